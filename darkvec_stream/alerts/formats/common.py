"""Helpers every alert rendering shares: timestamps, JSON-safe evidence, producer identity.

This module converts values; it does not choose fields for any one SIEM
format and never performs I/O.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from darkvec_stream import __version__
from darkvec_stream.alerts.model import Alert, AlertType, Severity
from darkvec_stream.errors import InputError

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000

#: Human titles per alert type, used as CEF Name, OCSF title, rule names.
ALERT_TITLES: Mapping[AlertType, str] = {
    AlertType.NEW_CLUSTER: "New cluster of coordinated darknet senders",
    AlertType.REEMERGED_CLUSTER: "Cluster of darknet senders re-emerged",
    AlertType.CLUSTER_DRIFT: "Cluster of darknet senders changed behaviour",
    AlertType.LABEL_CHANGE: "Darknet sender label changed",
}


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Producer identity and SIEM filing details shared by every format.

    ``hostname`` is the telescope host named as observer or syslog HOSTNAME.
    The ``splunk_*`` fields fill the HEC envelope; ``splunk_index`` None
    leaves the index to the token's default.
    """

    vendor: str = "darkvec-stream"
    product: str = "darkvec-stream"
    product_version: str = __version__
    hostname: str = field(default_factory=socket.gethostname)
    splunk_source: str = "darkvec-stream"
    splunk_sourcetype: str = "darkvec:alert"
    splunk_index: str | None = None


def split_ns(time_ns: int) -> tuple[int, int]:
    """Split epoch nanoseconds into whole seconds and the nanosecond remainder (>= 0)."""
    return divmod(time_ns, NS_PER_S)


def utc_datetime(time_ns: int) -> datetime:
    """Return the UTC datetime for epoch nanoseconds, truncated to microseconds."""
    seconds, remainder_ns = split_ns(time_ns)
    try:
        base = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as error:
        raise InputError(
            f"alert time {time_ns} ns is outside the years 1-9999; "
            "check the window timestamps"
        ) from error
    return base.replace(microsecond=remainder_ns // NS_PER_US)


def rfc3339_ns(time_ns: int) -> str:
    """Format epoch nanoseconds as RFC 3339 UTC with nine fractional digits."""
    seconds, remainder_ns = split_ns(time_ns)
    whole = utc_datetime(seconds * NS_PER_S).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{remainder_ns:09d}Z"


def rfc3339_us(time_ns: int) -> str:
    """Format epoch nanoseconds as RFC 3339 UTC with six fractional digits.

    Syslog (RFC 5424 TIME-SECFRAC) allows at most six digits.
    """
    return utc_datetime(time_ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_ms(time_ns: int) -> int:
    """Convert epoch nanoseconds to whole epoch milliseconds (floor)."""
    return time_ns // NS_PER_MS


def ip_version(value: str) -> int | None:
    """Return 4 or 6 when ``value`` is an IP address, None for anonymised tokens."""
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


def json_safe(value: Any) -> Any:
    """Convert evidence values into plain JSON types with a deterministic layout.

    Mappings get string keys in sorted order, and sets become sorted lists.
    Numpy scalars and arrays become Python numbers and lists. Integers beyond
    64 bits become decimal strings. Non-finite floats become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, because JSON has no
    literal for them.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        # JSON parsers (and orjson) stop at 64 bits; larger integers become strings.
        return int(value) if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        # float() also unwraps numpy.float64, a float subclass orjson rejects.
        number = float(value)
        return number if math.isfinite(number) else _non_finite_name(number)
    if isinstance(value, Mapping):
        return {str(key): json_safe(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (set, frozenset)):
        return [json_safe(item) for item in sorted(value, key=repr)]
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist"):
        # numpy scalars and arrays expose tolist(), which yields Python values.
        return json_safe(value.tolist())
    return str(value)


def _non_finite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def severity_rank(severity: Severity) -> int:
    """Return 1, 2 or 3 for low, medium and high, the base of every numeric mapping."""
    return {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}[severity]


def alert_title(alert: Alert) -> str:
    """Return the human title of the alert's type."""
    return ALERT_TITLES[alert.type]
