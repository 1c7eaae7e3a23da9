"""Renderers from the internal ``Alert`` to each SIEM format, by name.

``render(alert, format, context)`` returns the bytes a sink writes. The
dict- or string-level functions (``ecs_document``, ``cef_message``, ...)
are exported for callers that embed the rendering in another envelope.
"""

from __future__ import annotations

from typing import Callable

from darkvec_stream.alerts.formats.cef import cef_message, render_cef
from darkvec_stream.alerts.formats.common import RenderContext, rfc3339_ns
from darkvec_stream.alerts.formats.ecs import ecs_document, render_ecs
from darkvec_stream.alerts.formats.jsonl import alert_from_dict, alert_to_dict, render_jsonl
from darkvec_stream.alerts.formats.ocsf import ocsf_finding, render_ocsf
from darkvec_stream.alerts.formats.splunk import hec_event, render_splunk_hec
from darkvec_stream.alerts.formats.stix import render_stix, stix_bundle
from darkvec_stream.alerts.formats.syslog import SyslogHeader, octet_counted, syslog_message
from darkvec_stream.alerts.model import Alert
from darkvec_stream.errors import ConfigError

Renderer = Callable[[Alert, RenderContext], bytes]

RENDERERS: dict[str, Renderer] = {
    "jsonl": render_jsonl,
    "ecs": render_ecs,
    "cef": render_cef,
    "ocsf": render_ocsf,
    "stix": render_stix,
    "splunk-hec": render_splunk_hec,
}

#: Format names accepted by ``render`` and by every sink's ``format`` argument.
FORMATS: tuple[str, ...] = tuple(RENDERERS)


def get_renderer(format: str) -> Renderer:
    """Return the renderer for a format name, or raise ``ConfigError`` listing the valid names."""
    try:
        return RENDERERS[format]
    except KeyError:
        raise ConfigError(
            f"alert format {format!r} is unknown; use one of {', '.join(FORMATS)}"
        ) from None


def render(alert: Alert, format: str, context: RenderContext) -> bytes:
    """Render one alert in the named format (UTF-8 bytes, no trailing newline)."""
    return get_renderer(format)(alert, context)


__all__ = [
    "FORMATS",
    "RENDERERS",
    "RenderContext",
    "Renderer",
    "SyslogHeader",
    "alert_from_dict",
    "alert_to_dict",
    "cef_message",
    "ecs_document",
    "get_renderer",
    "hec_event",
    "octet_counted",
    "ocsf_finding",
    "render",
    "rfc3339_ns",
    "stix_bundle",
    "syslog_message",
]
