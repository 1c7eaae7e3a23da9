"""Validation of query API inputs: sender addresses, cluster ids, integers and times.

Each parser takes the raw text of one path segment or query parameter and
returns the typed value, or raises ``ApiError`` (HTTP 400) with a message
that names the parameter, the value and what is accepted. It does not route
requests or read any state.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from darkvec_stream.ingest.address import canonical_address
from darkvec_stream.ingest.errors import RecordError

CLUSTER_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
SENDER_TOKEN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"
MAX_SENDER_CHARS = 64
MAX_TEXT_SHOWN = 80
NS_PER_S = 1_000_000_000
# Epoch seconds accepted by ``since``: up to the start of the year 3000.
MAX_EPOCH_S = 32_503_680_000

_CLUSTER_ID = re.compile(CLUSTER_ID_PATTERN)
_INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?)?$"
)


class ApiError(Exception):
    """A request the API refuses: HTTP status, a short error code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def shown(text: str) -> str:
    """Return the text quoted for a message, cut to a readable length."""
    return repr(text if len(text) <= MAX_TEXT_SHOWN else text[:MAX_TEXT_SHOWN] + "...")


def parse_sender(text: str) -> str:
    """Return the canonical sender key of an IPv4 or IPv6 address (or an anonymised token)."""
    if len(text) > MAX_SENDER_CHARS:
        raise ApiError(400, "bad_address", f"sender {shown(text)} is too long: give an IPv4 or IPv6 address")
    try:
        return canonical_address(text, allow_token=True)
    except RecordError:
        raise ApiError(
            400, "bad_address",
            f"sender {shown(text)} is not an IPv4 or IPv6 address (for example 192.0.2.1 or 2001:db8::1)",
        ) from None


def parse_cluster_id(text: str) -> str:
    if not _CLUSTER_ID.match(text):
        raise ApiError(
            400, "bad_parameter",
            f"cluster id {shown(text)} is invalid: use letters, digits, '_', '.' or '-', "
            "as in the ids that /clusters lists",
        )
    return text


def parse_integer(name: str, text: str | None, default: int, minimum: int, maximum: int) -> int:
    """Return an integer parameter within [minimum, maximum], or ``default`` when absent."""
    if text is None:
        return default
    if not _INTEGER.match(text):
        raise ApiError(400, "bad_parameter", f"{name}={shown(text)} is not an integer: give {minimum} to {maximum}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise ApiError(400, "bad_parameter", f"{name}={value} is out of range: give {minimum} to {maximum}")
    return value


def parse_since_ns(text: str) -> int:
    """Return epoch nanoseconds from epoch seconds or an ISO 8601 date or date-time.

    A date-time without an offset is read as UTC. A leap second (``:60``)
    counts as the last nanosecond of the minute before it.
    """
    stripped = text.strip()
    if len(stripped) > MAX_SENDER_CHARS:
        raise ApiError(400, "bad_parameter", f"since={shown(text)} is too long to be a time")
    try:
        # Decimal, not float: a float loses nanoseconds beyond 2**53.
        seconds = Decimal(stripped)
    except InvalidOperation:
        return _iso_to_ns(stripped)
    if not seconds.is_finite() or not -MAX_EPOCH_S <= seconds <= MAX_EPOCH_S:
        raise ApiError(400, "bad_parameter",
                       f"since={shown(text)} is out of range: give epoch seconds up to {MAX_EPOCH_S} or an ISO 8601 time")
    return int((seconds * NS_PER_S).to_integral_value(rounding=ROUND_HALF_EVEN))


def _iso_to_ns(text: str) -> int:
    match = _DATE_TIME.match(text)
    if match is None:
        raise ApiError(
            400, "bad_parameter",
            f"since={shown(text)} is not a time: give epoch seconds (1614556800) or ISO 8601 "
            "(2021-03-01T00:00:00Z)",
        )
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    hour, minute = int(match[4] or 0), int(match[5] or 0)
    second = int(match[6] or 0)
    fraction_ns = int((match[7] or ".0")[1:10].ljust(9, "0"))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month) and hour <= 23 and minute <= 59
            and second <= 60):
        raise ApiError(400, "bad_parameter", f"since={shown(text)} is not a valid date and time")
    if second == 60:
        second, fraction_ns = 59, NS_PER_S - 1
    offset_s = _offset_s(match[8], text)
    days = _days_from_civil(year, month, day)
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s
    return seconds * NS_PER_S + fraction_ns


def _offset_s(text: str | None, whole: str) -> int:
    if text is None or text in ("Z", "z"):
        return 0
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ApiError(400, "bad_parameter", f"since={shown(whole)} has an invalid UTC offset {text!r}")
    sign = -1 if text[0] == "-" else 1
    return sign * (hours * 3600 + minutes * 60)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (year 0 included)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468
