"""Alerts as Splunk HTTP Event Collector (HEC) event objects.

The envelope follows the ``/services/collector/event`` endpoint: ``time`` in
epoch seconds with a six-digit fraction, ``host``, ``source``,
``sourcetype``, optional ``index``, the internal alert model as ``event``,
and a few string-valued indexed ``fields`` for fast search. HTTP delivery
lives in ``sinks/hec.py``.
"""

from __future__ import annotations

from typing import Any

import orjson

from darkvec_stream.alerts.formats.common import NS_PER_US, RenderContext
from darkvec_stream.alerts.formats.jsonl import alert_to_dict
from darkvec_stream.alerts.model import Alert


def hec_event(alert: Alert, context: RenderContext) -> dict[str, Any]:
    """Return the HEC event object for one alert (a dict ready for JSON)."""
    envelope: dict[str, Any] = {
        "time": orjson.Fragment(_epoch_seconds(alert.time_ns).encode("ascii")),
        "host": context.hostname,
        "source": context.splunk_source,
        "sourcetype": context.splunk_sourcetype,
    }
    if context.splunk_index is not None:
        envelope["index"] = context.splunk_index
    envelope["event"] = alert_to_dict(alert)
    envelope["fields"] = _indexed_fields(alert)
    return envelope


def render_splunk_hec(alert: Alert, context: RenderContext) -> bytes:
    """Render one alert as a compact HEC event object (UTF-8 JSON)."""
    return orjson.dumps(hec_event(alert, context))


def _epoch_seconds(time_ns: int) -> str:
    """Format epoch seconds with exactly six decimals, never in exponent notation.

    A float would print as ``1e-06`` near the epoch and round far from it,
    so the number is written as text and embedded as a raw JSON fragment.
    """
    total_us = time_ns // NS_PER_US
    sign = "-" if total_us < 0 else ""
    seconds, micros = divmod(abs(total_us), 1_000_000)
    return f"{sign}{seconds}.{micros:06d}"


def _indexed_fields(alert: Alert) -> dict[str, str]:
    # HEC indexed fields accept strings (or lists of strings) only.
    fields = {
        "alert_id": alert.alert_id,
        "alert_type": alert.type.value,
        "severity": alert.severity.value,
        "window_index": str(alert.window_index),
    }
    if alert.cluster_id is not None:
        fields["cluster_id"] = alert.cluster_id
    if alert.sender is not None:
        fields["sender"] = alert.sender
    return fields
