"""The RFC 5424 syslog envelope around a rendered alert, and RFC 6587 framing for TCP.

The message body is normally the CEF line; any text rendering works. The
HEADER fields are sanitised to their ABNF character sets and lengths. This
module builds bytes only; sockets live in ``sinks/syslog.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from darkvec_stream.alerts.formats.common import RenderContext, rfc3339_us
from darkvec_stream.alerts.model import Alert, Severity
from darkvec_stream.errors import ConfigError

NILVALUE = "-"

#: RFC 5424 severities: 5 notice, 4 warning, 2 critical.
SYSLOG_SEVERITY: dict[Severity, int] = {Severity.LOW: 5, Severity.MEDIUM: 4, Severity.HIGH: 2}

#: 32473 is the private enterprise number RFC 5612 reserves for documentation;
#: operators with their own number should set ``enterprise_id``.
DEFAULT_ENTERPRISE_ID = 32473


@dataclass(frozen=True, slots=True)
class SyslogHeader:
    """The fixed parts of every RFC 5424 message this process sends.

    ``facility`` is 0-23 (16 is local0). ``procid`` defaults to the process id.
    """

    facility: int = 16
    app_name: str = "darkvec-stream"
    procid: str = field(default_factory=lambda: str(os.getpid()))
    enterprise_id: int = DEFAULT_ENTERPRISE_ID

    def __post_init__(self) -> None:
        if not 0 <= self.facility <= 23:
            raise ConfigError(
                f"syslog facility {self.facility} is invalid; use 0-23 (16 is local0)"
            )
        if self.enterprise_id < 1:
            raise ConfigError(
                f"syslog enterprise_id {self.enterprise_id} is invalid; use a positive "
                "IANA private enterprise number"
            )


def syslog_message(
    alert: Alert, body: bytes, context: RenderContext, header: SyslogHeader
) -> bytes:
    """Wrap one rendered alert body into an RFC 5424 SYSLOG-MSG.

    The TIMESTAMP is the alert time with microseconds (RFC 5424 allows at
    most six fractional digits), MSGID is the alert type, and one SD-ELEMENT
    carries the alert id, cluster id and window index.
    """
    priority = header.facility * 8 + SYSLOG_SEVERITY[alert.severity]
    fields = [
        f"<{priority}>1",
        rfc3339_us(alert.time_ns),
        _printable(context.hostname, 255),
        _printable(header.app_name, 48),
        _printable(header.procid, 128),
        _printable(alert.type.value, 32),
        _structured_data(alert, header.enterprise_id),
    ]
    return " ".join(fields).encode("ascii") + b" " + body


def octet_counted(message: bytes) -> bytes:
    """Frame one syslog message for TCP by octet counting (RFC 6587 section 3.4.1)."""
    return str(len(message)).encode("ascii") + b" " + message


def escape_param_value(value: str) -> str:
    """Escape an SD-PARAM value: backslash, double quote and closing bracket."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _structured_data(alert: Alert, enterprise_id: int) -> str:
    params = [("alertId", alert.alert_id), ("windowIndex", str(alert.window_index))]
    if alert.cluster_id is not None:
        params.append(("clusterId", alert.cluster_id))
    rendered = " ".join(f'{name}="{escape_param_value(value)}"' for name, value in params)
    # PARAM-VALUE is UTF-8, but the HEADER is ASCII; keep SD ASCII too by
    # replacing anything else, since cluster ids are ASCII in practice.
    ascii_only = rendered.encode("ascii", "replace").decode("ascii")
    return f"[darkvec@{enterprise_id} {ascii_only}]"


def _printable(value: str, max_chars: int) -> str:
    """Keep only PRINTUSASCII (33-126) characters, at most ``max_chars``, or NILVALUE."""
    printable = "".join(char for char in value if 33 <= ord(char) <= 126)[:max_chars]
    return printable or NILVALUE
