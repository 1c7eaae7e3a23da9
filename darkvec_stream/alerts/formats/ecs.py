"""Alerts as Elastic Common Schema (ECS 8.x) documents.

Standard ECS fields carry what ECS defines: time, event categorisation,
rule, observer, source, threat and related IPs. Everything specific to
darkvec-stream goes under the custom ``darkvec`` namespace. Index templates
and ingest pipelines are out of scope.
"""

from __future__ import annotations

from typing import Any

import orjson

from darkvec_stream.alerts.formats.common import (
    RenderContext,
    alert_title,
    ip_version,
    json_safe,
    rfc3339_ns,
)
from darkvec_stream.alerts.model import Alert, Severity

ECS_VERSION = "8.11.0"

#: Numeric event.severity, on the 0-100 scale Elastic detection rules use.
ECS_SEVERITY: dict[Severity, int] = {Severity.LOW: 21, Severity.MEDIUM: 47, Severity.HIGH: 73}

#: Darknet traffic is unsolicited probing, which MITRE ATT&CK files as
#: Reconnaissance (TA0043), technique Active Scanning (T1595).
_ATTACK_THREAT = {
    "framework": "MITRE ATT&CK",
    "tactic": {
        "id": ["TA0043"],
        "name": ["Reconnaissance"],
        "reference": ["https://attack.mitre.org/tactics/TA0043/"],
    },
    "technique": {
        "id": ["T1595"],
        "name": ["Active Scanning"],
        "reference": ["https://attack.mitre.org/techniques/T1595/"],
    },
}


def ecs_document(alert: Alert, context: RenderContext) -> dict[str, Any]:
    """Return the alert as an ECS document (a dict ready for JSON)."""
    document: dict[str, Any] = {
        "@timestamp": rfc3339_ns(alert.time_ns),
        "ecs": {"version": ECS_VERSION},
        "message": alert.summary,
        "tags": ["darkvec", alert.type.value],
        "event": _event_fields(alert),
        "rule": {
            "id": alert.type.value,
            "name": alert_title(alert),
            "category": "darknet",
            "ruleset": context.product,
            "version": context.product_version,
        },
        "observer": {
            "hostname": context.hostname,
            "product": context.product,
            "vendor": context.vendor,
            "version": context.product_version,
            "type": "sensor",
        },
        "threat": _threat_fields(alert),
        "related": {"ip": _related_ips(alert)},
        "darkvec": _darkvec_fields(alert),
    }
    if alert.sender is not None:
        document["source"] = _source_fields(alert.sender)
    return document


def render_ecs(alert: Alert, context: RenderContext) -> bytes:
    """Render one alert as a compact ECS JSON document (UTF-8)."""
    return orjson.dumps(ecs_document(alert, context))


def _event_fields(alert: Alert) -> dict[str, Any]:
    category = ["intrusion_detection", "network"]
    event_type = ["info"]
    if alert.sender is not None and alert.sender in alert.sender_labels:
        # A labelled sender is a threat indicator in ECS terms.
        category.append("threat")
        event_type.append("indicator")
    return {
        "kind": "alert",
        "category": category,
        "type": event_type,
        "action": alert.type.value,
        "id": alert.alert_id,
        "severity": ECS_SEVERITY[alert.severity],
        "reason": alert.summary,
        "start": rfc3339_ns(alert.window_start_ns),
        "end": rfc3339_ns(alert.window_end_ns),
        "module": "darkvec",
        "dataset": "darkvec.alert",
    }


def _threat_fields(alert: Alert) -> dict[str, Any]:
    threat: dict[str, Any] = dict(_ATTACK_THREAT)
    if alert.sender is None:
        return threat
    label = alert.sender_labels.get(alert.sender)
    version = ip_version(alert.sender)
    if label is None or version is None:
        return threat
    threat["indicator"] = {
        "type": "ipv4-addr" if version == 4 else "ipv6-addr",
        "ip": alert.sender,
        "description": f"darknet sender labelled {label}",
        "first_seen": rfc3339_ns(alert.window_start_ns),
        "last_seen": rfc3339_ns(alert.window_end_ns),
    }
    return threat


def _source_fields(sender: str) -> dict[str, Any]:
    # source.ip is an ip-typed field: anonymised tokens go to source.address only.
    if ip_version(sender) is None:
        return {"address": sender}
    return {"address": sender, "ip": sender}


def _related_ips(alert: Alert) -> list[str]:
    named = ([alert.sender] if alert.sender is not None else []) + list(alert.sample_members)
    unique = dict.fromkeys(value for value in named if ip_version(value) is not None)
    return list(unique)


def _darkvec_fields(alert: Alert) -> dict[str, Any]:
    return {
        "alert_type": alert.type.value,
        "severity": alert.severity.value,
        "time_ns": alert.time_ns,
        "window": {
            "index": alert.window_index,
            "start_ns": alert.window_start_ns,
            "end_ns": alert.window_end_ns,
        },
        "cluster": {
            "id": alert.cluster_id,
            "member_count": alert.member_count,
            "sample_members": list(alert.sample_members),
            "top_ports": [
                {"port": port, "packets": packets} for port, packets in alert.top_ports
            ],
            "labels": json_safe(alert.labels),
        },
        "sender_labels": json_safe(alert.sender_labels),
        "evidence": json_safe(alert.evidence),
    }
