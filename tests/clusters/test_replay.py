"""Seeded replays of synthetic cluster streams: the exact window in which each alert fires."""

from __future__ import annotations

import numpy as np
import pytest

from darkvec_stream.alerts.model import AlertType, Severity, make_alert_id
from darkvec_stream.clusters.monitor import ClusterMonitor
from darkvec_stream.clusters.synthetic import StreamGroup, synthetic_stream

PORT_CHANGE_WINDOW = 30
WORM_ONSET = 20

STABLE_GROUPS = (
    StreamGroup("botnet", 300, (23, 2323)),
    StreamGroup("ssh", 60, (22,), labelled_share=0.5),
    StreamGroup("web", 40, (80, 443, 8080)),
    StreamGroup("smb", 30, (445,), labelled_share=0.5),
    StreamGroup("rdp", 25, (3389,)),
    StreamGroup("adb", 20, (5555,), labelled_share=0.5),
    StreamGroup("db", 15, (1433, 3306)),
)
EVENT_GROUPS = STABLE_GROUPS + (
    StreamGroup("worm", 40, (7547, 5555, 37215), onset_window=WORM_ONSET),
    StreamGroup("changer", 50, (80, 8080), port_change_window=PORT_CHANGE_WINDOW, new_ports=(6379, 9200)),
)


def replay(stream, monitor=None):
    monitor = monitor or ClusterMonitor()
    return [(item, monitor.update(item.window, item.keys, item.vectors, item.labels)) for item in stream]


@pytest.fixture(scope="module")
def event_stream():
    return synthetic_stream(EVENT_GROUPS, windows=40, seed=3)


@pytest.fixture(scope="module")
def event_run(event_stream):
    return replay(event_stream)


def alerts_of(run, alert_type):
    return [alert for _, update in run for alert in update.alerts if alert.type == alert_type]


@pytest.mark.slow
def test_stable_stream_fires_no_alert():
    run = replay(synthetic_stream(STABLE_GROUPS, windows=48, seed=11))
    alerts = [alert for _, update in run for alert in update.alerts]
    assert alerts == []
    assert all(update.churn.births == 0 for _, update in run[1:])


def test_port_change_fires_drift_in_the_change_window(event_run):
    # Every changer sender moves to ports it never used, so one window is enough evidence.
    drift = alerts_of(event_run, AlertType.CLUSTER_DRIFT)
    assert [alert.window_index for alert in drift] == [PORT_CHANGE_WINDOW]
    alert = drift[0]
    changer = {item.window.index: item for item, _ in event_run}[PORT_CHANGE_WINDOW]
    members = {sender for sender, group in changer.truth.items() if group == "changer"}
    assert set(alert.sample_members) <= members
    # A background sender now and then lands in a group's cluster.
    assert 50 <= alert.member_count <= 52
    assert alert.evidence["rule"] == "port_set_changed"
    assert alert.evidence["subgroup"] == "the whole cluster"
    assert alert.evidence["moved_senders"] == 50
    assert alert.evidence["ports_added"] == [6379, 9200]
    assert alert.evidence["ports_removed"] == [80, 8080]
    assert alert.evidence["jaccard_vs_history"] < alert.evidence["threshold"]
    assert alert.severity is Severity.MEDIUM
    assert [port for port, _ in alert.top_ports[:2]] in ([6379, 9200], [9200, 6379])


def test_new_group_fires_new_cluster_alert(event_run):
    new = alerts_of(event_run, AlertType.NEW_CLUSTER)
    assert len(new) == 1
    alert = new[0]
    assert WORM_ONSET <= alert.window_index <= WORM_ONSET + 2
    update = {u.window_index: u for _, u in event_run}[alert.window_index]
    members = update.tracking.members[alert.cluster_id]
    item = {i.window.index: i for i, _ in event_run}[alert.window_index]
    worm = {sender for sender, group in item.truth.items() if group == "worm"}
    assert len(members & worm) / len(members | worm) >= 0.8
    assert alert.evidence["unknown_share"] == 1.0
    assert alert.alert_id == make_alert_id(AlertType.NEW_CLUSTER, alert.cluster_id, f"emerged@{alert.window_index}")


def test_no_other_alerts_in_event_stream(event_run):
    types = {alert.type for _, update in event_run for alert in update.alerts}
    assert types == {AlertType.NEW_CLUSTER, AlertType.CLUSTER_DRIFT}


@pytest.mark.slow
def test_restore_mid_stream_gives_identical_alerts(event_stream, event_run, tmp_path):
    monitor = ClusterMonitor()
    replay(event_stream[:25], monitor)
    monitor.save(tmp_path)
    restored = ClusterMonitor()
    restored.load(tmp_path)
    resumed = replay(event_stream[25:], restored)
    for (_, expected), (_, actual) in zip(event_run[25:], resumed):
        assert actual.alerts == expected.alerts
        assert actual.tracking == expected.tracking
        assert actual.findings == expected.findings


def test_label_change_alert():
    stream = synthetic_stream(STABLE_GROUPS[:2], windows=4, background=0, seed=5)
    monitor = ClusterMonitor()
    sender = "198.18.0.7"
    assert sender in stream[2].window.activity and sender in stream[3].window.activity
    monitor.update(stream[0].window, stream[0].keys, stream[0].vectors, {sender: None})
    monitor.update(stream[1].window, stream[1].keys, stream[1].vectors, {sender: None})
    update = monitor.update(stream[2].window, stream[2].keys, stream[2].vectors, {sender: "mirai"})
    assert [alert for alert in update.alerts if alert.type == AlertType.LABEL_CHANGE] == []
    update = monitor.update(stream[3].window, stream[3].keys, stream[3].vectors, {sender: "mirai"})
    changes = [alert for alert in update.alerts if alert.type == AlertType.LABEL_CHANGE]
    assert len(changes) == 1
    assert changes[0].sender == sender
    assert changes[0].evidence == {"previous": None, "current": "mirai", "confidence": 1.0}
    assert changes[0].cluster_id == update.tracking.ids[0]
    assert changes[0].sender_labels == {sender: "mirai"}


def test_profiles_by_global_id(event_run):
    _, update = event_run[-1]
    assert set(update.profiles) == set(update.tracking.members)
    for cluster_id, profile in update.profiles.items():
        assert profile.size == len(update.tracking.members[cluster_id])
        assert profile.active_senders == profile.size
    item, _ = event_run[-1]
    for group in EVENT_GROUPS:
        members = {sender for sender, name in item.truth.items() if name == group.name}
        best = max(update.tracking.members.values(), key=lambda cluster: len(cluster & members))
        # A background sender now and then lands in a group's cluster.
        assert len(best & members) == group.size, group.name
        assert len(best) <= group.size + 2, group.name


def test_nonfinite_centroid_counted():
    stream = synthetic_stream(STABLE_GROUPS[:2], windows=3, background=0, seed=5)
    monitor = ClusterMonitor()
    for item in stream[:2]:
        monitor.update(item.window, item.keys, item.vectors)
    from darkvec_stream.clusters.drift import CENTROID_SHIFT, ClusterObservation

    cluster_id = monitor.drift.cluster_ids()[0]
    bad = ClusterObservation(size=10, centroid=np.full(50, np.nan), port_packets={22: 30})
    monitor.drift.update(2, {cluster_id: bad})
    assert monitor.drift.nonfinite_counts[CENTROID_SHIFT] == 1
    assert np.isnan(monitor.drift.series(cluster_id)[CENTROID_SHIFT][-1])
