"""Newcomers on novel ports carved out of their cluster, and split children counted as new clusters."""

from __future__ import annotations

import numpy as np
import pytest

from darkvec_stream.alerts.model import AlertType
from darkvec_stream.clusters.alerting import AlertRules
from darkvec_stream.clusters.clustering import Clustering, centroids_of
from darkvec_stream.clusters.emerging import EmergingGroups
from darkvec_stream.clusters.monitor import ClusterMonitor, _newcomer_shares
from darkvec_stream.clusters.profile import profile_clusters
from darkvec_stream.clusters.tracking import SPLIT, ClusterTracker
from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

HOUR_NS = 3_600_000_000_000
ESTABLISHED = [f"198.18.0.{i}" for i in range(1, 61)]
WORM = [f"100.64.1.{i}" for i in range(1, 9)]
LONERS = [f"100.64.2.{i}" for i in range(1, 9)]


def window_of(index: int, ports_by_sender: dict[str, dict[int, int]]) -> ClosedWindow:
    activity = {sender: SenderActivity(packets=sum(ports.values()), first_ns=index * HOUR_NS,
                                       last_ns=index * HOUR_NS + 1, dst_ports=dict(ports))
                for sender, ports in ports_by_sender.items()}
    return ClosedWindow(index, index * HOUR_NS, (index + 1) * HOUR_NS, (), activity, 0, len(activity), 0)


def one_cluster(keys: list[str]) -> tuple[Clustering, np.ndarray]:
    rng = np.random.default_rng(len(keys))
    vectors = rng.normal(size=(len(keys), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.zeros(len(keys), dtype=np.int64)
    clustering = Clustering(tuple(keys), labels, np.zeros(len(keys)), centroids_of(vectors, labels, 1),
                            "test", "exact")
    return clustering, vectors


def established_traffic(index: int) -> dict[str, dict[int, int]]:
    # Each established sender hits two of four common ports.
    common = (80, 443, 22, 23)
    return {sender: {common[(row + index) % 4]: 5, common[(row + index + 1) % 4]: 3}
            for row, sender in enumerate(ESTABLISHED)}


def run_windows(groups: EmergingGroups, windows: int, extra: dict[str, dict[int, int]] | None = None):
    result = None
    for index in range(windows):
        traffic = established_traffic(index)
        if extra and index == windows - 1:
            traffic.update(extra)
        clustering, vectors = one_cluster(sorted(traffic))
        result = groups.update(clustering, vectors, window_of(index, traffic))
    return result


def outbreak() -> dict[str, dict[int, int]]:
    traffic = {sender: {2375: 4, 2376: 2} for sender in WORM}
    # Loners are newcomers too, each on its own random port: no shared novel port.
    traffic.update({sender: {40000 + row: 3} for row, sender in enumerate(LONERS)})
    return traffic


def test_newcomers_on_novel_port_carved():
    clustering, carved = run_windows(EmergingGroups(min_history_runs=12), 20, outbreak())
    assert len(carved) == 1
    group = carved[0]
    assert group.members == tuple(sorted(WORM))
    assert group.novel_ports == (2375, 2376)
    assert group.novel_port_share == 1.0
    members = clustering.clusters()[group.label]
    assert members == tuple(sorted(WORM))
    assert clustering.n_clusters == 2
    assert set(clustering.clusters()[1 - group.label]) == set(ESTABLISHED) | set(LONERS)


def test_no_carving_before_history_ready():
    # Every sender is a newcomer in the first runs, so the history only starts after newcomer_windows.
    _, carved = run_windows(EmergingGroups(min_history_runs=12), 17, outbreak())
    assert carved == []


def test_groups_below_the_minimum_size_stay_put():
    small = {sender: {2375: 4} for sender in WORM[:4]}
    _, carved = run_windows(EmergingGroups(min_group_size=5, min_history_runs=3), 6, small)
    assert carved == []


def test_established_senders_not_newcomers():
    groups = EmergingGroups(newcomer_windows=2, min_history_runs=3)
    run_windows(groups, 8)
    # The established senders all move to a new port: that is drift, not a new group.
    traffic = {sender: {6379: 5} for sender in ESTABLISHED}
    clustering, vectors = one_cluster(sorted(traffic))
    _, carved = groups.update(clustering, vectors, window_of(8, traffic))
    assert carved == []
    assert groups.update(*one_cluster(sorted(outbreak())), window_of(9, outbreak()))[1]


def test_state_round_trip_gives_the_same_carving(tmp_path):
    live = EmergingGroups(min_history_runs=3)
    run_windows(live, 10)
    live.save(tmp_path)
    restored = EmergingGroups(min_history_runs=3)
    restored.load(tmp_path)
    traffic = established_traffic(10) | outbreak()
    clustering, vectors = one_cluster(sorted(traffic))
    expected = live.update(clustering, vectors, window_of(10, traffic))[1]
    assert restored.update(clustering, vectors, window_of(10, traffic))[1] == expected
    assert expected


def test_bad_settings_and_state_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="min_group_size"):
        EmergingGroups(min_group_size=1)
    with pytest.raises(ConfigError, match="novel_port_max_share"):
        EmergingGroups(novel_port_max_share=0.0)
    (tmp_path / "emerging.json").write_text('{"version": 1, "runs": "x"}', encoding="utf-8")
    with pytest.raises(StateError, match="emerging-group state"):
        EmergingGroups().load(tmp_path)


def test_split_child_of_newcomers_raises_new_cluster_alert():
    # Run 1: an old noise cluster. Run 2: the worm's senders land in it.
    # Run 3: they leave it; tracking calls the worm cluster a split child.
    tracker = ClusterTracker()
    noise = [f"203.0.113.{i}" for i in range(1, 41)]
    worm = [f"100.64.3.{i}" for i in range(1, 13)]
    tracker.update({0: noise}, 0)
    previous = tracker.active
    tracker.update({0: noise + worm[:10]}, 1)
    parent_before_split = tracker.active
    tracking = tracker.update({0: noise, 1: worm}, 2)
    child = tracking.ids[1]
    assert tracking.status[child] == SPLIT

    # Against the parent of the previous run the worm is not new; against
    # the newcomer span (first clustered in the last runs) it is.
    recent = set(worm)
    shares = _newcomer_shares(tracking, parent_before_split, recent.__contains__)
    assert shares[child] == 1.0
    assert _newcomer_shares(tracking, parent_before_split, lambda sender: False)[child] == pytest.approx(2 / 12)
    assert previous  # the first run only set the baseline

    keys = noise + worm
    labels = np.array([0] * len(noise) + [1] * len(worm))
    vectors = np.eye(len(keys), 4, dtype=np.float32) + 1.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clustering = Clustering(tuple(keys), labels, np.zeros(len(keys)), centroids_of(vectors, labels, 2), "test", "exact")
    traffic = {sender: {23: 5} for sender in noise} | {sender: {2375: 6} for sender in worm}
    window = window_of(2, traffic)
    profiles = {tracking.ids[label]: profile for label, profile in profile_clusters(clustering, [window], {}).items()}
    rules = AlertRules(min_cluster_size=10, warmup_windows=1)
    alerts = rules.build(window, 3, tracking, profiles, [], [], {}, newcomer_shares=shares)
    new = [alert for alert in alerts if alert.type == AlertType.NEW_CLUSTER]
    assert [alert.cluster_id for alert in new] == [child]
    assert new[0].evidence["split_from"] == [tracking.ids[0]]
    assert new[0].evidence["newcomer_share"] == 1.0
    assert "new to that cluster" in new[0].summary
    # The same split of an old group raises nothing.
    old = rules.build(window, 3, tracking, profiles, [], [], {}, newcomer_shares={child: 0.1})
    assert [alert for alert in old if alert.type == AlertType.NEW_CLUSTER] == []


def test_monitor_checkpoint_includes_emerging_state(tmp_path):
    monitor = ClusterMonitor(emerging=EmergingGroups(min_history_runs=3))
    for index in range(5):
        traffic = established_traffic(index)
        clustering, vectors = one_cluster(sorted(traffic))
        monitor.update(window_of(index, traffic), clustering.keys, vectors)
    monitor.save(tmp_path)
    assert (tmp_path / "emerging.json").is_file()
    restored = ClusterMonitor()
    restored.load(tmp_path)
    assert restored.emerging.is_newcomer(ESTABLISHED[0]) == monitor.emerging.is_newcomer(ESTABLISHED[0])


def test_later_wave_is_repeat():
    groups = EmergingGroups(min_history_runs=12, repeat_runs=24)
    _, first = run_windows(groups, 20, outbreak())
    assert first[0].repeat_of_run is None
    wave = {f"100.64.4.{i}": {2375: 4, 2376: 2} for i in range(1, 7)}
    traffic = established_traffic(20) | wave
    clustering, vectors = one_cluster(sorted(traffic))
    _, second = groups.update(clustering, vectors, window_of(20, traffic))
    assert [group.members for group in second] == [tuple(sorted(wave))]
    assert second[0].repeat_of_run == 20


def test_monitor_loads_checkpoint_without_emerging_state(tmp_path):
    monitor = ClusterMonitor()
    traffic = established_traffic(0)
    clustering, vectors = one_cluster(sorted(traffic))
    monitor.update(window_of(0, traffic), clustering.keys, vectors)
    monitor.save(tmp_path)
    (tmp_path / "emerging.json").unlink()
    restored = ClusterMonitor()
    restored.load(tmp_path)
    assert not restored.emerging.is_newcomer(ESTABLISHED[0])
    assert restored.tracker.known_ids() == monitor.tracker.known_ids()
