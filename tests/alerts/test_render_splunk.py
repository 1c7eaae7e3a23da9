"""Splunk HEC event objects: envelope shape, time precision, indexed fields."""

from __future__ import annotations

import re

import orjson
from hypothesis import given, settings

from darkvec_stream.alerts.formats import RenderContext, alert_to_dict, render
from tests.alerts.factories import CONTEXT, alerts, make_alert

ENVELOPE_KEYS = {"time", "host", "source", "sourcetype", "index", "event", "fields"}


def test_hec_envelope_shape() -> None:
    alert = make_alert()
    event = orjson.loads(render(alert, "splunk-hec", CONTEXT))
    assert set(event) == ENVELOPE_KEYS - {"index"}
    assert event["sourcetype"] == "darkvec:alert"
    assert event["host"] == "telescope-test"
    assert event["event"] == orjson.loads(orjson.dumps(alert_to_dict(alert)))
    assert all(isinstance(value, str) for value in event["fields"].values())


def test_hec_index_when_configured() -> None:
    context = RenderContext(hostname="h", splunk_index="darknet")
    assert orjson.loads(render(make_alert(), "splunk-hec", context))["index"] == "darknet"


def test_hec_time_has_microseconds() -> None:
    payload = render(make_alert(time_ns=1_620_003_600_123_456_789), "splunk-hec", CONTEXT)
    assert payload.startswith(b'{"time":1620003600.123456,')


@given(alerts())
@settings(max_examples=150, deadline=None)
def test_hec_time_is_exact_microseconds(alert) -> None:  # type: ignore[no-untyped-def]
    payload = render(alert, "splunk-hec", CONTEXT)
    number = payload.decode().split('"time":', 1)[1].split(",", 1)[0]
    assert re.fullmatch(r"-?\d+\.\d{6}", number), number
    whole, _, fraction = number.lstrip("-").partition(".")
    magnitude_us = int(whole) * 1_000_000 + int(fraction)
    assert (-magnitude_us if number.startswith("-") else magnitude_us) == alert.time_ns // 1000
    assert isinstance(orjson.loads(payload)["time"], float)
