"""JSON lines rendering: field order, RFC 3339 nanosecond times, round trip."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np
import orjson
import pytest
from hypothesis import given, settings

from darkvec_stream.alerts.formats import alert_from_dict, render
from darkvec_stream.alerts.formats.common import json_safe, rfc3339_ns, rfc3339_us
from darkvec_stream.errors import InputError, StateError
from tests.alerts.factories import CONTEXT, alerts, make_alert

RFC3339_NS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")

FIELD_ORDER = [
    "schema", "alert_id", "type", "severity", "time", "time_ns", "window_index",
    "window_start", "window_start_ns", "window_end", "window_end_ns", "cluster_id",
    "sender", "member_count", "sample_members", "top_ports", "labels", "sender_labels",
    "summary", "evidence",
]


def test_jsonl_field_order_is_stable() -> None:
    document = orjson.loads(render(make_alert(), "jsonl", CONTEXT))
    assert list(document) == FIELD_ORDER


def test_jsonl_is_one_line() -> None:
    payload = render(make_alert(summary="line one\nline two\r\n"), "jsonl", CONTEXT)
    assert b"\n" not in payload
    assert b"\r" not in payload


def test_jsonl_times_in_rfc3339_and_ns() -> None:
    alert = make_alert(time_ns=1_620_003_600_123_456_789)
    document = orjson.loads(render(alert, "jsonl", CONTEXT))
    assert document["time"] == "2021-05-03T01:00:00.123456789Z"
    assert document["time_ns"] == 1_620_003_600_123_456_789
    assert RFC3339_NS.match(document["window_start"])


@pytest.mark.parametrize(
    ("time_ns", "expected"),
    [
        (0, "1970-01-01T00:00:00.000000000Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (1_620_000_000_999_999_999, "2021-05-03T00:00:00.999999999Z"),
    ],
)
def test_rfc3339_ns_edges(time_ns: int, expected: str) -> None:
    assert rfc3339_ns(time_ns) == expected


def test_rfc3339_us_truncates_to_six_digits() -> None:
    assert rfc3339_us(1_620_000_000_999_999_999) == "2021-05-03T00:00:00.999999Z"


def test_time_outside_datetime_range_raises() -> None:
    with pytest.raises(InputError, match="outside the years"):
        rfc3339_ns(10**30)


@given(alerts())
@settings(max_examples=150, deadline=None)
def test_jsonl_round_trip(alert) -> None:  # type: ignore[no-untyped-def]
    document = orjson.loads(render(alert, "jsonl", CONTEXT))
    restored = alert_from_dict(document)
    assert restored.evidence == json_safe(alert.evidence)
    assert restored.labels == alert.labels
    comparable = {name: getattr(alert, name) for name in ("alert_id", "type", "severity",
        "time_ns", "window_index", "window_start_ns", "window_end_ns", "cluster_id",
        "member_count", "sample_members", "top_ports", "summary", "sender", "sender_labels")}
    for name, value in comparable.items():
        assert getattr(restored, name) == value, name
    assert RFC3339_NS.match(document["time"])
    parsed = datetime.fromisoformat(document["time"][:26] + "+00:00")
    assert int(parsed.timestamp()) == alert.time_ns // 1_000_000_000


def test_json_safe_converts_numpy_and_non_finite() -> None:
    evidence = {
        "ratio": np.float64(0.25),
        "count": np.int64(7),
        "ports": np.array([23, 2323]),
        "nan": float("nan"),
        "inf": float("inf"),
        "neg_inf": -np.inf,
        "set": {3, 1, 2},
        "tuple": (1, "a"),
        "nested": {2: "b", 1: "a"},
    }
    safe = json_safe(evidence)
    assert safe == {
        "count": 7, "inf": "Infinity", "nan": "NaN", "neg_inf": "-Infinity",
        "nested": {"1": "a", "2": "b"}, "ports": [23, 2323], "ratio": 0.25,
        "set": [1, 2, 3], "tuple": [1, "a"],
    }
    assert type(safe["count"]) is int
    orjson.dumps(safe)


def test_alert_from_dict_rejects_broken_document() -> None:
    document = orjson.loads(render(make_alert(), "jsonl", CONTEXT))
    del document["time_ns"]
    with pytest.raises(StateError, match="time_ns"):
        alert_from_dict(document)
