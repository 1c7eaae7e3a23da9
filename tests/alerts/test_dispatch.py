"""Dispatcher: deduplication across restarts, event-time rate limits, fan-out, checkpoints."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import darkvec_stream.alerts.dispatch as dispatch_module
from darkvec_stream.alerts.dispatch import (
    AlertDispatcher,
    EmittedLedger,
    RateLimit,
    TokenBuckets,
)
from darkvec_stream.alerts.model import Alert, AlertType, Severity
from darkvec_stream.alerts.sinks import FileSink
from darkvec_stream.errors import ConfigError, StateError
from tests.alerts.factories import BASE_NS, CONTEXT, HOUR_NS, make_alert
from tests.alerts.servers import FakeClock

UNLIMITED: dict[AlertType, RateLimit] = {}


def _ids(alerts: list[Alert]) -> list[str]:
    return [alert.alert_id for alert in alerts]


def test_dispatch_docstring_example() -> None:
    result = doctest.testmod(dispatch_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_duplicate_suppressed_within_and_across_calls() -> None:
    dispatcher = AlertDispatcher(type_limits=UNLIMITED, cluster_limit=None)
    first = dispatcher.dispatch([make_alert(0), make_alert(0), make_alert(1)])
    second = dispatcher.dispatch([make_alert(1), make_alert(2)])
    assert _ids(first.emitted) == _ids([make_alert(0), make_alert(1)])
    assert _ids(second.emitted) == _ids([make_alert(2)])
    assert dispatcher.suppressed_counts[("duplicate", "new_cluster")] == 2
    assert dispatcher.emitted_counts["new_cluster"] == 3


def test_dedup_survives_save_and_load(tmp_path: Path) -> None:
    before = AlertDispatcher(type_limits=UNLIMITED, cluster_limit=None)
    before.dispatch([make_alert(index) for index in range(5)])
    before.save(tmp_path)

    after = AlertDispatcher(type_limits=UNLIMITED, cluster_limit=None)
    after.load(tmp_path)
    report = after.dispatch([make_alert(index) for index in range(3, 7)])
    assert _ids(report.emitted) == _ids([make_alert(5), make_alert(6)])
    assert [reason for _, reason in report.suppressed] == ["duplicate", "duplicate"]
    assert after.emitted_counts["new_cluster"] == 7


def test_type_rate_limit_runs_on_event_time() -> None:
    limits = {AlertType.NEW_CLUSTER: RateLimit(per_hour=1, burst=2)}
    same_time = [make_alert(index, time_ns=BASE_NS) for index in range(3)]
    later = make_alert(3, time_ns=BASE_NS + HOUR_NS)
    too_soon = make_alert(4, time_ns=BASE_NS + HOUR_NS + 1)

    decisions = []
    for _ in range(2):  # a replay makes the same decisions, whatever the wall clock
        dispatcher = AlertDispatcher(type_limits=limits, cluster_limit=None)
        report = dispatcher.dispatch([*same_time, later, too_soon])
        decisions.append((_ids(report.emitted), [(a.alert_id, r) for a, r in report.suppressed]))
    assert decisions[0] == decisions[1]
    assert decisions[0][0] == _ids([same_time[0], same_time[1], later])
    assert decisions[0][1] == [(same_time[2].alert_id, "rate_limited"), (too_soon.alert_id, "rate_limited")]


def test_cluster_rate_limit_is_per_cluster() -> None:
    dispatcher = AlertDispatcher(type_limits=UNLIMITED, cluster_limit=RateLimit(per_hour=1, burst=1))
    drift = replace(make_alert(1, time_ns=BASE_NS, cluster_id="C1"), type=AlertType.CLUSTER_DRIFT)
    report = dispatcher.dispatch([
        make_alert(0, time_ns=BASE_NS, cluster_id="C1"),
        drift,
        make_alert(2, time_ns=BASE_NS, cluster_id="C2"),
        make_alert(3, time_ns=BASE_NS, cluster_id=None),
    ])
    assert _ids(report.emitted) == _ids([
        make_alert(0, cluster_id="C1"), make_alert(2, cluster_id="C2"), make_alert(3, cluster_id=None),
    ])
    assert dispatcher.suppressed_counts[("rate_limited", "cluster_drift")] == 1


def test_refusal_does_not_spend_other_limit() -> None:
    limits = {AlertType.NEW_CLUSTER: RateLimit(per_hour=1, burst=1)}
    dispatcher = AlertDispatcher(type_limits=limits, cluster_limit=RateLimit(per_hour=1, burst=1))
    dispatcher.dispatch([make_alert(0, time_ns=BASE_NS, cluster_id="C1")])
    # Refused by the type limit: the cluster C2 token must stay unspent.
    dispatcher.dispatch([make_alert(1, time_ns=BASE_NS, cluster_id="C2")])
    drift = replace(make_alert(2, time_ns=BASE_NS, cluster_id="C2"), type=AlertType.CLUSTER_DRIFT)
    assert _ids(dispatcher.dispatch([drift]).emitted) == [drift.alert_id]


def test_high_severity_goes_first_under_limit() -> None:
    limits = {AlertType.NEW_CLUSTER: RateLimit(per_hour=1, burst=1)}
    dispatcher = AlertDispatcher(type_limits=limits, cluster_limit=None)
    low = make_alert(0, time_ns=BASE_NS, severity=Severity.LOW)
    high = make_alert(1, time_ns=BASE_NS, severity=Severity.HIGH)
    report = dispatcher.dispatch([low, high])
    assert _ids(report.emitted) == [high.alert_id]
    assert report.suppressed == [(low, "rate_limited")]


def test_fan_out_to_sinks_in_several_formats(tmp_path: Path) -> None:
    sinks = [
        FileSink(tmp_path / "a.jsonl", "jsonl", context=CONTEXT),
        FileSink(tmp_path / "a.ocsf", "ocsf", context=CONTEXT),
        FileSink(tmp_path / "a.cef", "cef", context=CONTEXT),
    ]
    dispatcher = AlertDispatcher(sinks, type_limits=UNLIMITED, cluster_limit=None)
    dispatcher.dispatch([make_alert(0), make_alert(0), make_alert(1)])
    dispatcher.close()
    jsonl = [orjson.loads(line)["alert_id"] for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    ocsf = [orjson.loads(line)["finding_info"]["uid"] for line in (tmp_path / "a.ocsf").read_bytes().splitlines()]
    assert jsonl == ocsf == _ids([make_alert(0), make_alert(1)])
    assert len((tmp_path / "a.cef").read_bytes().splitlines()) == 2


def test_undelivered_alerts_survive_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    out.mkdir()  # the destination is unavailable while the first process runs
    sink = FileSink(out, name="siem", context=CONTEXT, clock=FakeClock())
    before = AlertDispatcher([sink], type_limits=UNLIMITED, cluster_limit=None)
    before.dispatch([make_alert(0), make_alert(1)])
    before.save(tmp_path / "state")

    out.rmdir()
    restarted = FileSink(out, name="siem", context=CONTEXT)
    after = AlertDispatcher([restarted], type_limits=UNLIMITED, cluster_limit=None)
    after.load(tmp_path / "state")
    after.flush()
    lines = out.read_bytes().splitlines()
    assert [orjson.loads(line)["alert_id"] for line in lines] == _ids([make_alert(0), make_alert(1)])


alert_stream = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12),  # alert index (repeats are duplicates)
        st.integers(min_value=0, max_value=3),  # cluster
        st.sampled_from(list(AlertType)),
        st.integers(min_value=0, max_value=2 * HOUR_NS),  # event-time step
    ),
    max_size=40,
)


def _materialise(stream: list[tuple[int, int, AlertType, int]]) -> list[Alert]:
    alerts, time_ns = [], BASE_NS
    for index, cluster, alert_type, step_ns in stream:
        time_ns += step_ns
        alerts.append(replace(make_alert(index, time_ns=time_ns, cluster_id=f"C{cluster}"), type=alert_type))
    return alerts


@given(alert_stream, st.integers(min_value=0, max_value=40))
@settings(max_examples=60, deadline=None)
def test_restore_gives_identical_decisions(stream, cut) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    alerts = _materialise(stream)
    limits = {kind: RateLimit(per_hour=2, burst=2) for kind in AlertType}
    cluster_limit = RateLimit(per_hour=1, burst=1)

    def decide(dispatcher: AlertDispatcher, batch: list[Alert]) -> list[tuple[str, str | None]]:
        report = dispatcher.dispatch(batch)
        return [(a.alert_id, None) for a in report.emitted] + [(a.alert_id, r) for a, r in report.suppressed]

    straight = AlertDispatcher(type_limits=limits, cluster_limit=cluster_limit, ledger_max_ids=8)
    expected = [decide(straight, [alert]) for alert in alerts]

    first = AlertDispatcher(type_limits=limits, cluster_limit=cluster_limit, ledger_max_ids=8)
    observed = [decide(first, [alert]) for alert in alerts[:cut]]
    with tempfile.TemporaryDirectory() as directory:
        first.save(Path(directory))
        second = AlertDispatcher(type_limits=limits, cluster_limit=cluster_limit, ledger_max_ids=8)
        second.load(Path(directory))
    observed += [decide(second, [alert]) for alert in alerts[cut:]]
    assert observed == expected
    assert second.suppressed_counts == straight.suppressed_counts


def test_ledger_bounded_by_count() -> None:
    ledger = EmittedLedger(max_ids=3)
    for index in range(5):
        ledger.add(f"id{index}", BASE_NS)
    assert len(ledger) == 3
    assert "id1" not in ledger
    assert "id4" in ledger


def test_ledger_bounded_by_event_age() -> None:
    ledger = EmittedLedger(max_ids=100, max_age_s=3600)
    ledger.add("old", BASE_NS)
    ledger.add("recent", BASE_NS + HOUR_NS)
    assert "old" in ledger  # exactly max_age old is kept
    ledger.add("new", BASE_NS + HOUR_NS + 1)
    assert "old" not in ledger
    assert "recent" in ledger


def test_full_buckets_forgotten_without_changing_decisions() -> None:
    limit = RateLimit(per_hour=1, burst=1)
    bounded, unbounded = TokenBuckets(limit, max_keys=1), TokenBuckets(limit)
    times = [(key, BASE_NS + step * HOUR_NS) for step, key in enumerate("abcabc")]
    for key, time_ns in times:
        for buckets in (bounded, unbounded):
            assert buckets.tokens(key, time_ns) >= 1.0
            buckets.take(key, time_ns)
    assert len(bounded) == 1
    assert len(unbounded) == 3


def test_time_going_backwards_refills_nothing() -> None:
    buckets = TokenBuckets(RateLimit(per_hour=1, burst=1))
    buckets.take("a", BASE_NS + HOUR_NS)
    assert buckets.tokens("a", BASE_NS) == 0.0


def test_load_rejects_missing_foreign_and_corrupt_state(tmp_path: Path) -> None:
    dispatcher = AlertDispatcher()
    with pytest.raises(StateError, match="missing"):
        dispatcher.load(tmp_path)
    (tmp_path / "alert_dispatch.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(StateError, match="version 99"):
        dispatcher.load(tmp_path)
    (tmp_path / "alert_dispatch.json").write_text(json.dumps({"version": 1, "ledger": 5}))
    with pytest.raises(StateError, match="corrupt"):
        dispatcher.load(tmp_path)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RateLimit(per_hour=0, burst=1), "per_hour"),
        (lambda: RateLimit(per_hour=1, burst=0), "burst"),
        (lambda: EmittedLedger(max_ids=0), "max_ids"),
        (lambda: AlertDispatcher(type_limits={"nope": RateLimit(1, 1)}), "nope"),
    ],
)
def test_invalid_settings_raise(build, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=match):
        build()


def test_duplicate_sink_names_raise(tmp_path: Path) -> None:
    sinks = [FileSink(tmp_path / "a", name="x"), FileSink(tmp_path / "b", name="x")]
    with pytest.raises(ConfigError, match="unique"):
        AlertDispatcher(sinks)
