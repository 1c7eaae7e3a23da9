"""STIX 2.1 bundles: validated by stix2.parse, deterministic ids, one indicator per labelled IP."""

from __future__ import annotations

import uuid

import stix2
from hypothesis import given, settings
from stix2patterns.validator import run_validator

from darkvec_stream.alerts.formats import render
from tests.alerts.factories import CONTEXT, alerts, make_alert


def _parse(alert) -> stix2.Bundle:  # type: ignore[no-untyped-def]
    return stix2.parse(render(alert, "stix", CONTEXT).decode("utf-8"), allow_custom=False)


def _by_type(bundle: stix2.Bundle, object_type: str) -> list:  # type: ignore[type-arg]
    return [item for item in bundle.objects if item.type == object_type]


def test_stix_bundle_parses_strictly() -> None:
    bundle = _parse(make_alert())
    assert bundle.type == "bundle"
    assert {item.type for item in bundle.objects} == {
        "identity", "ipv4-addr", "ipv6-addr", "indicator", "observed-data", "grouping", "note",
    }


def test_stix_indicator_per_labelled_sender() -> None:
    alert = make_alert(sender_labels={"192.0.2.1": "mirai", "2001:db8::1": "shodan"})
    indicators = _by_type(_parse(alert), "indicator")
    patterns = sorted(indicator.pattern for indicator in indicators)
    assert patterns == ["[ipv4-addr:value = '192.0.2.1']", "[ipv6-addr:value = '2001:db8::1']"]
    for indicator in indicators:
        assert indicator.pattern_type == "stix"
        assert run_validator(indicator.pattern, stix_version="2.1") == []
    mirai = next(item for item in indicators if "192.0.2.1" in item.pattern)
    assert mirai.labels == ["mirai"]
    assert mirai.indicator_types == ["malicious-activity"]


def test_stix_resent_alert_gives_same_objects() -> None:
    alert = make_alert()
    assert render(alert, "stix", CONTEXT) == render(alert, "stix", CONTEXT)
    other = make_alert(index=1)
    ids = {item.id for item in _parse(alert).objects}
    other_ids = {item.id for item in _parse(other).objects}
    shared = {item_id for item_id in ids & other_ids if not item_id.startswith(("identity", "ipv"))}
    assert shared == set()


def test_stix_ids_are_uuid5() -> None:
    bundle = _parse(make_alert())
    assert uuid.UUID(bundle.id.split("--")[1]).version == 5
    for item in bundle.objects:
        assert uuid.UUID(item.id.split("--")[1]).version == 5, item.id


def test_stix_note_carries_summary_and_evidence() -> None:
    alert = make_alert()
    note = _by_type(_parse(alert), "note")[0]
    assert alert.summary in note.content
    assert '"unknown_share":0.75' in note.content


def test_stix_without_ip_addresses_keeps_note() -> None:
    alert = make_alert(sample_members=("src_ipaddr1",), sender_labels={"src_ipaddr1": "mirai"})
    bundle = _parse(alert)
    assert [item.type for item in bundle.objects] == ["identity", "note"]


@given(alerts())
@settings(max_examples=60, deadline=None)
def test_stix_valid_for_any_alert(alert) -> None:  # type: ignore[no-untyped-def]
    bundle = _parse(alert)
    labelled_ips = {s for s in alert.sender_labels if ":" in s or s.count(".") == 3}
    assert len(_by_type(bundle, "indicator")) == len(labelled_ips)
