"""Alerts as OCSF 1.3.0 Detection Finding events (class_uid 2004, Findings category 2).

Every attribute the class requires is set, plus the recommended ones that
fit (message, status, observables, finding times, ATT&CK). Data specific to
darkvec-stream goes in ``unmapped``. Other OCSF classes are out of scope.
"""

from __future__ import annotations

from typing import Any

import orjson

from darkvec_stream.alerts.formats.common import (
    RenderContext,
    alert_title,
    ip_version,
    json_safe,
    to_ms,
)
from darkvec_stream.alerts.model import Alert, AlertType, Severity

OCSF_VERSION = "1.3.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
STATUS_NEW = 1
OBSERVABLE_IP_ADDRESS = 2
OBSERVABLE_OTHER = 99

#: OCSF severity_id: 2 Low, 3 Medium, 4 High.
OCSF_SEVERITY: dict[Severity, tuple[int, str]] = {
    Severity.LOW: (2, "Low"),
    Severity.MEDIUM: (3, "Medium"),
    Severity.HIGH: (4, "High"),
}

_FINDING_TYPES: dict[AlertType, list[str]] = {
    AlertType.NEW_CLUSTER: ["Coordinated Scanning", "New Cluster"],
    AlertType.REEMERGED_CLUSTER: ["Coordinated Scanning", "Re-emerged Cluster"],
    AlertType.CLUSTER_DRIFT: ["Coordinated Scanning", "Cluster Drift"],
    AlertType.LABEL_CHANGE: ["Sender Classification", "Label Change"],
}


def ocsf_finding(alert: Alert, context: RenderContext) -> dict[str, Any]:
    """Return the alert as an OCSF Detection Finding (a dict ready for JSON)."""
    severity_id, severity_name = OCSF_SEVERITY[alert.severity]
    return {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": STATUS_NEW,
        "status": "New",
        "is_alert": True,
        "time": to_ms(alert.time_ns),
        "start_time": to_ms(alert.window_start_ns),
        "end_time": to_ms(alert.window_end_ns),
        "message": alert.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.alert_id,
            "product": {
                "name": context.product,
                "vendor_name": context.vendor,
                "version": context.product_version,
            },
        },
        "finding_info": _finding_info(alert),
        "observables": _observables(alert),
        "unmapped": _unmapped(alert),
    }


def render_ocsf(alert: Alert, context: RenderContext) -> bytes:
    """Render one alert as a compact OCSF JSON event (UTF-8)."""
    return orjson.dumps(ocsf_finding(alert, context))


def _finding_info(alert: Alert) -> dict[str, Any]:
    return {
        "uid": alert.alert_id,
        "title": alert_title(alert),
        "desc": alert.summary,
        "types": list(_FINDING_TYPES[alert.type]),
        "created_time": to_ms(alert.time_ns),
        "first_seen_time": to_ms(alert.window_start_ns),
        "last_seen_time": to_ms(alert.window_end_ns),
        "attacks": [
            {
                "version": "v14",
                "tactic": {"uid": "TA0043", "name": "Reconnaissance"},
                "technique": {"uid": "T1595", "name": "Active Scanning"},
            }
        ],
    }


def _observables(alert: Alert) -> list[dict[str, Any]]:
    observables: list[dict[str, Any]] = []
    if alert.sender is not None:
        observables.append(_observable("unmapped.sender", alert.sender))
    for index, member in enumerate(alert.sample_members):
        observables.append(_observable(f"unmapped.sample_members[{index}]", member))
    return observables


def _observable(name: str, value: str) -> dict[str, Any]:
    if ip_version(value) is None:
        return {
            "name": name, "type_id": OBSERVABLE_OTHER, "type": "Anonymised Sender", "value": value
        }
    return {"name": name, "type_id": OBSERVABLE_IP_ADDRESS, "type": "IP Address", "value": value}


def _unmapped(alert: Alert) -> dict[str, Any]:
    return {
        "alert_type": alert.type.value,
        "window_index": alert.window_index,
        "cluster_id": alert.cluster_id,
        "sender": alert.sender,
        "member_count": alert.member_count,
        "sample_members": list(alert.sample_members),
        "top_ports": [{"port": port, "packets": packets} for port, packets in alert.top_ports],
        "labels": json_safe(alert.labels),
        "sender_labels": json_safe(alert.sender_labels),
        "evidence": json_safe(alert.evidence),
    }
