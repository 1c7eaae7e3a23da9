"""Drift rules, detector calibration and label changes on hand-made series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from darkvec_stream.clusters.drift import (
    PORT_SET_CHANGED,
    SIZE_BURST,
    ClusterDrift,
    ClusterObservation,
    LabelChanges,
    as_sender_label,
    calibrate_page_hinkley,
)
from darkvec_stream.errors import ConfigError


def observation(size: int, ports: dict[int, int]) -> ClusterObservation:
    return ClusterObservation(size=size, centroid=None, port_packets=ports)


def rules_fired(drift: ClusterDrift, sizes: list[int], ports: list[dict[int, int]]) -> list[tuple[int, str]]:
    fired = []
    for window, (size, port_packets) in enumerate(zip(sizes, ports)):
        for finding in drift.update(window, {"C1": observation(size, port_packets)}):
            if finding.rule != "detector":
                fired.append((window, finding.rule))
    return fired


def test_size_burst_fires_once_then_rebaselines():
    drift = ClusterDrift(size_burst_ratio=2.0, size_burst_min_senders=10, min_history_windows=3, size_burst_windows=1)
    sizes = [20, 21, 19, 20, 60, 61, 60, 62]
    assert rules_fired(drift, sizes, [{22: 50}] * len(sizes)) == [(4, SIZE_BURST)]


def test_size_burst_must_last_two_windows_by_default():
    drift = ClusterDrift(size_burst_ratio=2.0, size_burst_min_senders=10, min_history_windows=3)
    # A one-window jump (a tracking reassignment) is not a burst; a lasting one fires in its second window.
    sizes = [20, 21, 19, 20, 60, 20, 21, 20, 60, 61, 60, 62]
    fired = rules_fired(drift, sizes, [{22: 50}] * len(sizes))
    assert fired == [(9, SIZE_BURST)]


def test_size_burst_needs_history_and_absolute_growth():
    drift = ClusterDrift(min_history_windows=3)
    assert rules_fired(drift, [20, 60, 61, 60], [{22: 50}] * 4) == []
    small = ClusterDrift(size_burst_min_senders=10)
    assert rules_fired(small, [3, 3, 3, 3, 9], [{22: 50}] * 5) == []


def test_port_change_fires_in_change_window_and_once():
    drift = ClusterDrift(port_jaccard_threshold=0.5, min_history_windows=3, port_change_windows=1)
    ports = [{80: 40, 8080: 30}] * 5 + [{6379: 50, 9200: 40}] * 5
    assert rules_fired(drift, [30] * 10, ports) == [(5, PORT_SET_CHANGED)]


def test_port_change_skips_quiet_windows_of_a_periodic_campaign():
    # A campaign every third window: the quiet windows neither confirm nor clear a change.
    drift = ClusterDrift(min_history_windows=3)
    before, after, quiet = {80: 40, 443: 30}, {3389: 40, 5900: 30}, {80: 2}
    ports = [before, quiet, quiet] * 4 + [after, quiet, quiet, after, quiet, quiet]
    assert rules_fired(drift, [30] * len(ports), ports) == [(15, PORT_SET_CHANGED)]


def test_port_rule_skips_clusters_without_a_port_set():
    # Lone scanners on many ports each below port_min_share: no port set, so no change to report.
    rng = np.random.default_rng(4)
    ports = [{int(port): 3 for port in rng.choice(np.arange(1, 200), size=25, replace=False)} for _ in range(30)]
    assert rules_fired(ClusterDrift(min_history_windows=3), [30] * 30, ports) == []


def test_port_change_needs_most_packets_on_new_ports():
    # One new port with a fifth of the packets moves the Jaccard index below 0.5 but not the traffic.
    drift = ClusterDrift(min_history_windows=3)
    ports = [{80: 40}] * 5 + [{80: 40, 6379: 10}] * 5
    assert rules_fired(drift, [30] * 10, ports) == []


def test_port_change_with_two_windows_confirmation():
    drift = ClusterDrift(port_change_windows=2, min_history_windows=3)
    ports = [{80: 40}] * 5 + [{6379: 50}] * 5
    # The first low window stays out of the history, so the second confirms.
    fired = rules_fired(drift, [30] * 10, ports)
    assert fired == [(6, PORT_SET_CHANGED)]


def test_quiet_windows_leave_port_rule_alone():
    drift = ClusterDrift(port_min_packets=20, min_history_windows=3)
    ports = [{80: 40}] * 4 + [{6379: 5}] + [{80: 40}] * 3
    assert rules_fired(drift, [30] * 8, ports) == []


def test_bad_drift_settings_rejected():
    with pytest.raises(ConfigError, match="size_burst_ratio"):
        ClusterDrift(size_burst_ratio=1.0)
    with pytest.raises(ConfigError, match="unknown series"):
        ClusterDrift(page_hinkley_thresholds={"size": 1.0})


def test_calibration_picks_quiet_threshold():
    rng = np.random.default_rng(0)
    stable = [list(rng.normal(0.5, 0.05, size=48)) for _ in range(50)]
    threshold, alarms = calibrate_page_hinkley(stable, grid=(0.01, 0.1, 1.0, 10.0), margin=1.5)
    assert alarms[0.01] > 0
    quiet = min(value for value, count in alarms.items() if count == 0)
    assert threshold == pytest.approx(quiet * 1.5)
    with pytest.raises(ConfigError, match="raised alarms"):
        calibrate_page_hinkley(stable, grid=(0.001,))


@dataclass
class Decision:
    label: str | None
    confidence: float
    abstained: bool = False


def test_label_changes_rules():
    changes = LabelChanges(min_confidence=0.8, persist_windows=1)
    assert changes.update(0, {"a": None, "b": "mirai", "c": Decision("censys", 0.9)}) == []
    second = changes.update(1, {"a": Decision("mirai", 0.95), "b": Decision("censys", 0.5), "c": Decision(None, 0.1, True)})
    assert [(c.sender, c.previous, c.current) for c in second] == [("a", None, "mirai")]
    third = changes.update(2, {"b": Decision("censys", 0.85), "c": "censys"})
    assert [(c.sender, c.previous, c.current) for c in third] == [("b", "mirai", "censys")]


def test_label_state_round_trip(tmp_path):
    changes = LabelChanges()
    changes.update(0, {"a": None, "b": "mirai"})
    changes.save(tmp_path)
    restored = LabelChanges()
    restored.load(tmp_path)
    assert restored.update(1, {"a": "shodan", "b": "mirai"}) == changes.update(1, {"a": "shodan", "b": "mirai"})
    restored.forget(["a", "b"])
    assert len(restored) == 0


def test_abstained_decision_is_unknown():
    assert as_sender_label(Decision("mirai", 0.9, abstained=True)).label is None
    with pytest.raises(ConfigError, match="cannot read a sender label"):
        as_sender_label(42)


def test_label_change_must_persist_in_active_windows():
    changes = LabelChanges(min_confidence=0.8)
    assert changes.update(0, {"a": None, "b": "mirai"}) == []
    # A one-window flip does not fire, and an abstention breaks the run.
    assert changes.update(1, {"a": "censys", "b": "censys"}) == []
    assert changes.update(2, {"a": Decision(None, 0.2, True), "b": "mirai"}) == []
    assert changes.update(3, {"a": "censys"}) == []
    # A window where the sender was not active repeats its label without advancing the run.
    assert changes.update(4, {"a": "censys"}, active=set()) == []
    fired = changes.update(5, {"a": "censys"}, active={"a"})
    assert [(c.sender, c.window_index, c.previous, c.current) for c in fired] == [("a", 5, None, "censys")]


def test_pending_label_survives_save_and_load(tmp_path):
    changes = LabelChanges()
    changes.update(0, {"a": "mirai"})
    changes.update(1, {"a": "censys"})
    changes.save(tmp_path)
    restored = LabelChanges()
    restored.load(tmp_path)
    assert [c.current for c in restored.update(2, {"a": "censys"})] == ["censys"]
