"""ECS 8.x rendering: required fields, types, allowed categorisation values."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import orjson
from hypothesis import given, settings

from darkvec_stream.alerts.formats import render
from darkvec_stream.alerts.formats.ecs import ECS_SEVERITY
from tests.alerts.factories import CONTEXT, alerts, make_alert

# ECS 8.x allowed event.type values for each event.category this renderer uses.
EXPECTED_TYPES = {
    "intrusion_detection": {"allowed", "denied", "info"},
    "network": {"access", "allowed", "connection", "denied", "end", "info", "protocol", "start"},
    "threat": {"indicator"},
}


def _document(alert) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return orjson.loads(render(alert, "ecs", CONTEXT))


def _check_ecs(document: dict) -> None:  # type: ignore[type-arg]
    datetime.fromisoformat(document["@timestamp"][:26] + "+00:00")
    assert document["ecs"]["version"].startswith("8.")
    event = document["event"]
    assert event["kind"] == "alert"
    assert isinstance(event["category"], list) and event["category"]
    assert set(event["category"]) <= set(EXPECTED_TYPES)
    allowed_types = set().union(*(EXPECTED_TYPES[c] for c in event["category"]))
    assert set(event["type"]) <= allowed_types
    assert isinstance(event["severity"], int)
    assert isinstance(event["id"], str)
    assert isinstance(event["reason"], str)
    assert isinstance(document["message"], str)
    assert isinstance(document["rule"]["name"], str)
    assert document["observer"]["product"] == "darkvec-stream"
    for value in document["related"]["ip"]:
        ipaddress.ip_address(value)
    if "source" in document and "ip" in document["source"]:
        ipaddress.ip_address(document["source"]["ip"])


def test_ecs_cluster_alert_fields() -> None:
    alert = make_alert()
    document = _document(alert)
    _check_ecs(document)
    assert document["event"]["severity"] == ECS_SEVERITY[alert.severity]
    assert document["event"]["reason"] == alert.summary
    assert document["message"] == alert.summary
    assert "source" not in document
    assert document["darkvec"]["evidence"] == {"threshold": 0.5, "unknown_share": 0.75}
    assert document["darkvec"]["cluster"]["id"] == alert.cluster_id
    assert document["threat"]["technique"]["id"] == ["T1595"]


def test_ecs_sender_alert_sets_source_and_indicator() -> None:
    alert = make_alert(sender="192.0.2.1", sender_labels={"192.0.2.1": "mirai"})
    document = _document(alert)
    _check_ecs(document)
    assert document["source"] == {"address": "192.0.2.1", "ip": "192.0.2.1"}
    assert document["threat"]["indicator"]["ip"] == "192.0.2.1"
    assert document["threat"]["indicator"]["type"] == "ipv4-addr"
    assert "threat" in document["event"]["category"]
    assert "indicator" in document["event"]["type"]


def test_ecs_token_sender_has_no_source_ip() -> None:
    document = _document(make_alert(sender="src_ipaddr17", sample_members=("src_ipaddr17",)))
    assert document["source"] == {"address": "src_ipaddr17"}
    assert document["related"]["ip"] == []


@given(alerts())
@settings(max_examples=100, deadline=None)
def test_ecs_valid_for_any_alert(alert) -> None:  # type: ignore[no-untyped-def]
    _check_ecs(_document(alert))
