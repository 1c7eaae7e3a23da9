"""The internal alert model as one JSON object per line, and back.

Field order is fixed so that lines diff cleanly; times appear both as RFC 3339
UTC strings with nanoseconds and as integer nanoseconds. Parsing back is
used for checkpointed undelivered alerts; it is not a general JSON importer.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from darkvec_stream.alerts.formats.common import RenderContext, json_safe, rfc3339_ns
from darkvec_stream.alerts.model import Alert, AlertType, Severity
from darkvec_stream.errors import StateError

SCHEMA = "darkvec-stream.alert/1"


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """Return the alert as a JSON-ready dict with a stable field order."""
    return {
        "schema": SCHEMA,
        "alert_id": alert.alert_id,
        "type": alert.type.value,
        "severity": alert.severity.value,
        "time": rfc3339_ns(alert.time_ns),
        "time_ns": alert.time_ns,
        "window_index": alert.window_index,
        "window_start": rfc3339_ns(alert.window_start_ns),
        "window_start_ns": alert.window_start_ns,
        "window_end": rfc3339_ns(alert.window_end_ns),
        "window_end_ns": alert.window_end_ns,
        "cluster_id": alert.cluster_id,
        "sender": alert.sender,
        "member_count": alert.member_count,
        "sample_members": list(alert.sample_members),
        "top_ports": [{"port": port, "packets": packets} for port, packets in alert.top_ports],
        "labels": json_safe(alert.labels),
        "sender_labels": json_safe(alert.sender_labels),
        "summary": alert.summary,
        "evidence": json_safe(alert.evidence),
    }


def render_jsonl(alert: Alert, context: RenderContext | None = None) -> bytes:
    """Render one alert as one compact JSON line (UTF-8, no trailing newline)."""
    del context  # the internal model does not depend on the producer identity
    return orjson.dumps(alert_to_dict(alert))


def alert_from_dict(document: Mapping[str, Any]) -> Alert:
    """Rebuild an ``Alert`` from ``alert_to_dict`` output.

    Evidence comes back as JSON values (lists for tuples, strings for
    non-finite floats). Raises ``StateError`` naming the bad field.
    """
    try:
        return Alert(
            alert_id=str(document["alert_id"]),
            type=AlertType(document["type"]),
            severity=Severity(document["severity"]),
            time_ns=int(document["time_ns"]),
            window_index=int(document["window_index"]),
            window_start_ns=int(document["window_start_ns"]),
            window_end_ns=int(document["window_end_ns"]),
            cluster_id=document["cluster_id"],
            member_count=int(document["member_count"]),
            sample_members=tuple(str(member) for member in document["sample_members"]),
            top_ports=tuple(
                (int(item["port"]), int(item["packets"])) for item in document["top_ports"]
            ),
            summary=str(document["summary"]),
            evidence=dict(document["evidence"]),
            labels={str(key): int(count) for key, count in document["labels"].items()},
            sender=document["sender"],
            sender_labels={
                str(key): str(label) for key, label in document["sender_labels"].items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        alert_id = document.get("alert_id", "?") if isinstance(document, Mapping) else "?"
        raise StateError(
            f"saved alert {alert_id!r} is not a valid {SCHEMA} document ({error!r}); "
            "the checkpoint was written by another version or is corrupt"
        ) from error
