"""OCSF 1.3.0 Detection Finding: required attributes and enumerations of class 2004."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
from hypothesis import given, settings

from darkvec_stream.alerts.formats import render
from tests.alerts.factories import CONTEXT, alerts, make_alert

# Required attributes of OCSF 1.3.0 Detection Finding (class_uid 2004), by
# object path: the class (with base event and Findings category attributes),
# metadata, product and finding_info objects.
REQUIRED = {
    "": {
        "activity_id", "category_uid", "class_uid", "finding_info", "metadata",
        "severity_id", "time", "type_uid",
    },
    "metadata": {"product", "version"},
    "metadata.product": {"vendor_name"},
    "finding_info": {"title", "uid"},
}
OBSERVABLE_REQUIRED = {"name", "type_id"}
ACTIVITY_IDS = {0, 1, 2, 3, 99}
SEVERITY_IDS = {0, 1, 2, 3, 4, 5, 6, 99}
STATUS_IDS = {0, 1, 2, 3, 4, 5, 6, 99}


def _at(document: dict[str, Any], path: str) -> dict[str, Any]:
    for part in filter(None, path.split(".")):
        document = document[part]
    return document


def _check_ocsf(finding: dict[str, Any]) -> None:
    for path, required in REQUIRED.items():
        missing = required - set(_at(finding, path))
        assert not missing, f"{path or 'class'} misses {missing}"
    product = finding["metadata"]["product"]
    assert "name" in product or "uid" in product  # schema constraint: at least one
    assert finding["class_uid"] == 2004
    assert finding["category_uid"] == 2
    assert finding["type_uid"] == finding["class_uid"] * 100 + finding["activity_id"]
    assert finding["activity_id"] in ACTIVITY_IDS
    assert finding["severity_id"] in SEVERITY_IDS
    assert finding["status_id"] in STATUS_IDS
    for name in ("time", "start_time", "end_time"):
        assert isinstance(finding[name], int)
    assert finding["metadata"]["version"].startswith("1.")
    for observable in finding["observables"]:
        assert OBSERVABLE_REQUIRED <= set(observable)
        if observable["type_id"] == 2:
            ipaddress.ip_address(observable["value"])


def test_ocsf_detection_finding_required_attributes() -> None:
    alert = make_alert()
    finding = orjson.loads(render(alert, "ocsf", CONTEXT))
    _check_ocsf(finding)
    assert finding["time"] == alert.time_ns // 1_000_000
    assert finding["finding_info"]["uid"] == alert.alert_id
    assert finding["finding_info"]["desc"] == alert.summary
    assert finding["finding_info"]["first_seen_time"] == alert.window_start_ns // 1_000_000
    assert finding["unmapped"]["evidence"] == {"threshold": 0.5, "unknown_share": 0.75}
    values = [observable["value"] for observable in finding["observables"]]
    assert values == list(alert.sample_members)


def test_ocsf_token_member_is_other_observable() -> None:
    finding = orjson.loads(render(make_alert(sample_members=("src_ipaddr3",)), "ocsf", CONTEXT))
    assert finding["observables"][0]["type_id"] == 99


@given(alerts())
@settings(max_examples=100, deadline=None)
def test_ocsf_valid_for_any_alert(alert) -> None:  # type: ignore[no-untyped-def]
    _check_ocsf(orjson.loads(render(alert, "ocsf", CONTEXT)))
