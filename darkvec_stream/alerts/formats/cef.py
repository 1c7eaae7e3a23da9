"""Alerts as ArcSight Common Event Format (CEF:0) lines.

The header escapes backslash and pipe; extension values escape backslash and
equals sign and encode CR and LF as ``\\r`` and ``\\n``. Extension keys come
from the CEF key dictionary. The syslog envelope is in ``syslog.py``.
"""

from __future__ import annotations

import orjson

from darkvec_stream.alerts.formats.common import (
    RenderContext,
    alert_title,
    ip_version,
    json_safe,
    to_ms,
)
from darkvec_stream.alerts.model import Alert, Severity

#: CEF severity 0-10; 3, 6 and 8 fall in the Low, Medium and High bands.
CEF_SEVERITY: dict[Severity, int] = {Severity.LOW: 3, Severity.MEDIUM: 6, Severity.HIGH: 8}

#: ArcSight field lengths: msg accepts 1023 characters, custom strings 4000.
MSG_MAX_CHARS = 1023
CUSTOM_STRING_MAX_CHARS = 4000


def escape_header(value: str) -> str:
    """Escape one CEF header field: backslash and pipe, and fold line breaks to spaces.

    The CEF specification allows line breaks only in extension values.
    """
    escaped = value.replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def escape_extension_value(value: str) -> str:
    """Escape one CEF extension value: backslash, equals sign, CR and LF."""
    escaped = value.replace("\\", "\\\\").replace("=", "\\=")
    return escaped.replace("\r", "\\r").replace("\n", "\\n")


def cef_message(alert: Alert, context: RenderContext) -> str:
    """Return the CEF line for one alert (no trailing newline)."""
    header = [
        "CEF:0",
        escape_header(context.vendor),
        escape_header(context.product),
        escape_header(context.product_version),
        escape_header(alert.type.value),
        escape_header(alert_title(alert)),
        str(CEF_SEVERITY[alert.severity]),
    ]
    extension = " ".join(
        f"{key}={escape_extension_value(value)}" for key, value in cef_extension(alert, context)
    )
    return "|".join(header) + "|" + extension


def render_cef(alert: Alert, context: RenderContext) -> bytes:
    """Render one alert as a CEF line in UTF-8."""
    return cef_message(alert, context).encode("utf-8")


def cef_extension(alert: Alert, context: RenderContext) -> list[tuple[str, str]]:
    """Return the extension as ordered (key, unescaped value) pairs."""
    pairs: list[tuple[str, str]] = [
        ("rt", str(to_ms(alert.time_ns))),
        ("start", str(to_ms(alert.window_start_ns))),
        ("end", str(to_ms(alert.window_end_ns))),
        ("externalId", alert.alert_id),
        ("cat", alert.type.value),
        ("cnt", str(alert.member_count)),
        ("msg", alert.summary[:MSG_MAX_CHARS]),
        ("dvchost", context.hostname),
    ]
    pairs += _sender_pairs(alert.sender)
    pairs += [
        ("cn1Label", "windowIndex"),
        ("cn1", str(alert.window_index)),
        *_custom_string(1, "clusterId", alert.cluster_id or ""),
        *_custom_string(2, "sampleMembers", ",".join(alert.sample_members)),
        *_custom_string(3, "topPorts", _format_top_ports(alert)),
        *_custom_string(4, "labelMix", _compact_json(alert.labels)),
        *_custom_string(5, "evidence", _compact_json(alert.evidence)),
    ]
    if alert.sender is not None:
        pairs += _custom_string(6, "sender", alert.sender)
    return pairs


def _sender_pairs(sender: str | None) -> list[tuple[str, str]]:
    if sender is None:
        return []
    version = ip_version(sender)
    if version == 4:
        return [("src", sender)]
    if version == 6:
        return [("c6a2Label", "Source IPv6 Address"), ("c6a2", sender)]
    return []


def _custom_string(index: int, label: str, value: str) -> list[tuple[str, str]]:
    return [(f"cs{index}Label", label), (f"cs{index}", value[:CUSTOM_STRING_MAX_CHARS])]


def _format_top_ports(alert: Alert) -> str:
    return ",".join(f"{port}:{packets}" for port, packets in alert.top_ports)


def _compact_json(value: object) -> str:
    return orjson.dumps(json_safe(value)).decode("utf-8")
