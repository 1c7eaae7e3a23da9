"""Parameter parsing and pagination, checked as properties against the standard library."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from darkvec_stream.query.api import QueryApi
from darkvec_stream.query.params import ApiError, parse_integer, parse_sender, parse_since_ns
from darkvec_stream.query.snapshot import QuerySnapshot


class FixedSource:
    """A snapshot source that always hands out the same snapshot."""

    def __init__(self, snapshot: QuerySnapshot) -> None:
        self.current = snapshot


def snapshot_with_alerts(count: int) -> QuerySnapshot:
    alerts = tuple(
        {"alert_id": f"dvs-{n:04d}", "type": "new_cluster" if n % 3 else "label_change", "severity": "low",
         "time": "", "time_ns": 1_600_000_000_000_000_000 + n * 10**9, "window_index": n,
         "cluster_id": f"C{n % 4:06d}", "sender": None, "member_count": 1, "summary": "s"}
        for n in range(count)
    )
    return QuerySnapshot(
        senders=(), vectors=np.zeros((0, 4), dtype=np.float32), labels={}, facts={}, windows=(),
        sender_cluster={}, cluster_window_index=None, profiles=MappingProxyType({}), transitions={},
        alerts=alerts, windows_closed=0, published_s=0.0,
    )


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_since_iso_matches_datetime(moment: datetime) -> None:
    expected_s = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    assert parse_since_ns(moment.isoformat()) == expected_s * 1000
    assert parse_since_ns(moment.isoformat().replace("+00:00", "Z")) == expected_s * 1000


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 32_503_679_999))
def test_since_epoch_seconds(seconds: int) -> None:
    assert parse_since_ns(str(seconds)) == seconds * 10**9


def test_since_without_offset_is_utc() -> None:
    assert parse_since_ns("2021-03-01T00:00:00") == 1614556800 * 10**9
    assert parse_since_ns("2021-03-01T00:00:00Z") == 1614556800 * 10**9


def test_since_leap_second_is_clamped() -> None:
    assert parse_since_ns("2016-12-31T23:59:60Z") == 1483228800 * 10**9 - 1


@pytest.mark.parametrize("text", ["2021-13-01", "2021-02-29T00:00:00Z", "2021-03-01T24:00:00Z", "inf", "",
                                  "2021-03-01T00:00:00+24:00", "1e12"])
def test_since_rejects_invalid_times(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_since_ns(text)
    assert caught.value.status == 400


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_sender_parse_is_canonical(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    expected = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    assert parse_sender(str(address)) == str(expected)
    assert parse_sender(address.exploded) == str(expected)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_sender_parse_accepts_only_addresses_and_tokens(text: str) -> None:
    try:
        parsed = parse_sender(text)
    except ApiError as error:
        assert error.status == 400
        assert error.code == "bad_address"
        return
    assert parsed == text or ipaddress.ip_address(parsed)


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**20, 10**20))
def test_integer_range(value: int) -> None:
    try:
        parsed = parse_integer("limit", str(value), 5, 1, 1000)
    except ApiError as error:
        assert error.status == 400
        assert "limit=" in error.message
        assert not 1 <= value <= 1000
        return
    assert parsed == value
    assert 1 <= value <= 1000


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 40), limit=st.integers(1, 12), kind=st.sampled_from([None, "new_cluster"]))
def test_alert_pages_cover_each_alert_once(count: int, limit: int, kind: str | None) -> None:
    api = QueryApi(FixedSource(snapshot_with_alerts(count)), max_page_size=12)
    target: str | None = f"/alerts?limit={limit}" + (f"&type={kind}" if kind else "")
    seen: list[str] = []
    while target is not None:
        response = api.handle("GET", target)
        assert response.status == 200
        assert len(response.body["items"]) <= limit
        seen += [alert["alert_id"] for alert in response.body["items"]]
        target = response.body["next"]
    expected = [f"dvs-{n:04d}" for n in range(count) if kind is None or n % 3]
    assert seen == expected


def test_offset_past_the_end_is_an_empty_page() -> None:
    response = QueryApi(FixedSource(snapshot_with_alerts(3))).handle("GET", "/alerts?offset=10")
    assert response.status == 200
    assert response.body == {"total": 3, "limit": 100, "offset": 10, "next": None, "items": []}
