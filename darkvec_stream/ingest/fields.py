"""Field converters shared by the text decoders: timestamps, ports, numbers.

Each converter takes the field's text (or a JSON scalar), returns the
``Record`` value and raises ``RecordError`` naming the field and the value.
Event time is kept as exact integer nanoseconds: decimal strings are split
at the point instead of going through a float. This module does not know
any column layout.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Callable

from darkvec_stream.ingest.errors import (
    BAD_FIELD,
    BAD_PORT,
    BAD_TIMESTAMP,
    RecordError,
)
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

MAX_TS_NS = 2**63 - 1

# Unit of an epoch timestamp as a power of ten of nanoseconds.
EPOCH_UNITS = {"epoch_s": 9, "epoch_ms": 6, "epoch_us": 3, "epoch_ns": 0}

PROTOCOL_NUMBERS = {
    "icmp": PROTO_ICMP,
    "igmp": 2,
    "ipip": 4,
    "ipencap": 4,
    "tcp": PROTO_TCP,
    "udp": PROTO_UDP,
    "ipv6": 41,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": PROTO_ICMPV6,
    "ipv6-icmp": PROTO_ICMPV6,
    "icmp6": PROTO_ICMPV6,
    "sctp": 132,
}

_PROTOCOL_LOOKUP = {**PROTOCOL_NUMBERS, **{name.upper(): number for name, number in PROTOCOL_NUMBERS.items()}}

_TCP_FLAG_LETTERS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}

_ISO_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})"
    r"(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_SECOND = timedelta(seconds=1)

Scalar = str | int | float | bool | None


def epoch_to_ns(value: Scalar, unit_exponent: int, field: str = "ts") -> int:
    """Convert an epoch timestamp in a decimal unit to integer nanoseconds.

    ``unit_exponent`` is the unit as a power of ten of nanoseconds (9 for
    seconds). Digits below one nanosecond are truncated.
    """
    if isinstance(value, bool) or value is None:
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid timestamp {value!r}")
    if isinstance(value, int):
        ts_ns = value * 10**unit_exponent
    elif isinstance(value, (float, str)):
        # repr() of a float is the shortest decimal that reads back the same,
        # so a JSON float like 1619827200.160742 keeps its microseconds.
        text = repr(value) if isinstance(value, float) else value.strip()
        ts_ns = _decimal_text_to_ns(text, unit_exponent, field)
    else:
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid timestamp {value!r}")
    if not 0 <= ts_ns <= MAX_TS_NS:
        raise RecordError(BAD_TIMESTAMP, f"{field}: timestamp {value!r} out of range")
    return ts_ns


def _decimal_text_to_ns(text: str, unit_exponent: int, field: str) -> int:
    whole, point, fraction = text.partition(".")
    if whole.isdigit() and whole.isascii() and (not point or _is_digits(fraction)):
        scaled = int(whole) * 10**unit_exponent
        if unit_exponent and fraction:
            scaled += int(fraction[:unit_exponent].ljust(unit_exponent, "0"))
        return scaled
    try:
        exact = Decimal(text)
    except InvalidOperation:
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid timestamp {text!r}") from None
    if not exact.is_finite():
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid timestamp {text!r}")
    return int(exact.scaleb(unit_exponent))


def _is_digits(text: str) -> bool:
    return text.isdigit() and text.isascii()


# Epoch seconds at midnight of recently seen dates: a log at one-second
# resolution repeats each date many times.
_midnight_seconds: dict[str, int] = {}
_DATE_CACHE_ENTRIES = 4096


def iso_to_ns(text: str, field: str = "ts") -> int:
    """Convert ``YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|+HH:MM]`` to nanoseconds.

    A time without an offset is read as UTC.
    """
    if len(text) == 19:
        seconds = _plain_iso_seconds(text)
        if seconds is not None:
            return seconds * 10**9
    return _parse_iso(text, field)


def _plain_iso_seconds(text: str) -> int | None:
    """Read ``YYYY-MM-DD HH:MM:SS`` quickly; None sends it to the full parser."""
    if text[10] not in " T" or text[13] != ":" or text[16] != ":":
        return None
    clock = text[11:13] + text[14:16] + text[17:19]
    if not (clock.isdigit() and clock.isascii()):
        return None
    hour, minute, second = int(clock[:2]), int(clock[2:4]), int(clock[4:])
    if hour > 23 or minute > 59 or second > 59:
        return None
    midnight = _midnight_seconds.get(text[:10])
    if midnight is None:
        try:
            midnight = _parse_iso(text[:10] + " 00:00:00", "ts") // 10**9
        except RecordError:
            return None
        if len(_midnight_seconds) >= _DATE_CACHE_ENTRIES:
            _midnight_seconds.clear()
        _midnight_seconds[text[:10]] = midnight
    return midnight + hour * 3600 + minute * 60 + second


def _parse_iso(text: str, field: str) -> int:
    match = _ISO_PATTERN.fullmatch(text.strip())
    if match is None:
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid ISO timestamp {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=timezone.utc,
        )
    except ValueError as error:
        raise RecordError(BAD_TIMESTAMP, f"{field}: invalid ISO timestamp {text!r} ({error})") from None
    seconds = (moment - _EPOCH) // _ONE_SECOND - _offset_seconds(offset)
    ts_ns = seconds * 10**9 + (int(fraction[:9].ljust(9, "0")) if fraction else 0)
    if not 0 <= ts_ns <= MAX_TS_NS:
        raise RecordError(BAD_TIMESTAMP, f"{field}: timestamp {text!r} out of range")
    return ts_ns


def _offset_seconds(offset: str | None) -> int:
    if offset is None or offset == "Z":
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def strptime_to_ns(text: str, time_format: str, field: str = "ts") -> int:
    """Convert a timestamp in a ``strptime`` format to nanoseconds, UTC if naive."""
    try:
        moment = datetime.strptime(text.strip(), time_format)
    except ValueError:
        raise RecordError(
            BAD_TIMESTAMP, f"{field}: timestamp {text!r} does not match format {time_format!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    ts_ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if not 0 <= ts_ns <= MAX_TS_NS:
        raise RecordError(BAD_TIMESTAMP, f"{field}: timestamp {text!r} out of range")
    return ts_ns


def parse_integer(value: Scalar, field: str, maximum: int, reason: str = BAD_FIELD) -> int:
    """Parse a non-negative integer up to ``maximum``; ``443.0`` reads as 443."""
    if type(value) is str and value.isdigit() and value.isascii():
        number = int(value)
        if number > maximum:
            raise RecordError(reason, f"{field}: value {value!r} outside 0..{maximum}")
        return number
    if isinstance(value, bool):
        raise RecordError(reason, f"{field}: invalid integer {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise RecordError(reason, f"{field}: invalid integer {value!r}")
        number = int(value)
    elif isinstance(value, str):
        number = _integer_from_text(value.strip(), field, reason)
    else:
        raise RecordError(reason, f"{field}: invalid integer {value!r}")
    if not 0 <= number <= maximum:
        raise RecordError(reason, f"{field}: value {value!r} outside 0..{maximum}")
    return number


def _integer_from_text(text: str, field: str, reason: str) -> int:
    whole, point, fraction = text.partition(".")
    # Spreadsheets and pandas write integer columns with nulls as floats.
    if _is_digits(whole) and (not point or (fraction and fraction.strip("0") == "")):
        return int(whole)
    raise RecordError(reason, f"{field}: invalid integer {text!r}")


def parse_port(value: Scalar, field: str) -> int:
    """Parse a TCP/UDP port (0..65535), rejecting with ``bad_port``."""
    return parse_integer(value, field, 65_535, BAD_PORT)


def parse_protocol(value: Scalar, field: str = "proto") -> int:
    """Parse an IP protocol given as a number (0..255) or a name like ``tcp``."""
    if isinstance(value, str):
        number = _PROTOCOL_LOOKUP.get(value) or _PROTOCOL_LOOKUP.get(value.strip().lower())
        if number is not None:
            return number
    return parse_integer(value, field, 255)


def parse_tcp_flags(value: Scalar, field: str = "tcp_flags") -> int:
    """Parse TCP flags as an integer, ``0x`` hexadecimal, or letters like ``SA``."""
    if isinstance(value, str):
        text = value.strip()
        if text[:2].lower() == "0x":
            try:
                number = int(text[2:], 16)
            except ValueError:
                raise RecordError(BAD_FIELD, f"{field}: invalid TCP flags {value!r}") from None
            return parse_integer(number, field, 0xFFF)
        if text and text.isalpha():
            return _flags_from_letters(text, field)
    return parse_integer(value, field, 0xFFF)


def _flags_from_letters(text: str, field: str) -> int:
    flags = 0
    for letter in text.upper():
        bit = _TCP_FLAG_LETTERS.get(letter)
        if bit is None:
            raise RecordError(BAD_FIELD, f"{field}: invalid TCP flag letter {letter!r} in {text!r}")
        flags |= bit
    return flags


def parse_mirai(value: Scalar, field: str = "mirai") -> bool:
    """Parse a fingerprint flag written as 1/0, true/false or yes/no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "1.0"):
        return True
    if text in ("0", "false", "no", "0.0"):
        return False
    raise RecordError(BAD_FIELD, f"{field}: invalid flag {value!r} (expected 1 or 0)")


TimestampConverter = Callable[[Scalar, str], int]


def auto_to_ns(value: Scalar, field: str = "ts") -> int:
    """Convert epoch seconds (number or decimal text) or an ISO timestamp."""
    if isinstance(value, str) and ("-" in value or "T" in value):
        return iso_to_ns(value, field)
    return epoch_to_ns(value, 9, field)


def timestamp_converter(name: str) -> TimestampConverter | None:
    """Return the converter for an epoch unit, ``iso``, ``auto`` or a strptime format.

    ``auto`` reads epoch seconds or ISO text, as exporters differ by setting.

    Returns None when ``name`` is none of these, so the caller can report
    the setting.
    """
    if name in EPOCH_UNITS:
        exponent = EPOCH_UNITS[name]
        return lambda value, field: epoch_to_ns(value, exponent, field)
    if name == "iso":
        return lambda value, field: iso_to_ns(_text(value, field), field)
    if name == "auto":
        return auto_to_ns
    if "%" in name:
        return lambda value, field: strptime_to_ns(_text(value, field), name, field)
    return None


def _text(value: Scalar, field: str) -> str:
    if not isinstance(value, str):
        raise RecordError(BAD_TIMESTAMP, f"{field}: expected a text timestamp, got {value!r}")
    return value
