"""Cluster tracking on hand-built member sets: each transition, stable ids, re-emergence, state."""

from __future__ import annotations

import pytest

from darkvec_stream.clusters.tracking import (
    ABSORBED,
    DISAPPEARED,
    EMERGED,
    GREW,
    MERGED,
    REEMERGED,
    SHRANK,
    SPLIT,
    SURVIVED,
    ClusterTracker,
)
from darkvec_stream.errors import ConfigError, StateError


def senders(prefix: str, count: int, start: int = 0) -> set[str]:
    return {f"{prefix}{i}" for i in range(start, start + count)}


def kinds(result) -> dict[str, str]:
    return {t.cluster_id: t.kind for t in result.transitions}


def test_first_run_emerges_with_sequential_ids():
    tracker = ClusterTracker()
    result = tracker.update({0: senders("a", 10), 1: senders("b", 5)}, window_index=0)
    assert result.ids == {0: "C000001", 1: "C000002"}
    assert kinds(result) == {"C000001": EMERGED, "C000002": EMERGED}
    assert result.churn.births == 2
    assert result.churn.active == 2


def test_survived_grew_shrank():
    tracker = ClusterTracker(min_jaccard=0.3, growth_ratio=1.5)
    tracker.update({0: senders("a", 10), 1: senders("b", 10), 2: senders("c", 10)}, 0)
    result = tracker.update({0: senders("a", 11), 1: senders("b", 16), 2: senders("c", 6)}, 1)
    assert kinds(result) == {"C000001": SURVIVED, "C000002": GREW, "C000003": SHRANK}
    assert result.churn.survivals == 3
    assert result.churn.births == 0


def test_split_keeps_id_on_largest_child():
    tracker = ClusterTracker()
    tracker.update({0: senders("a", 20)}, 0)
    result = tracker.update({0: senders("a", 12), 1: senders("a", 8, start=12)}, 1)
    assert result.ids[0] == "C000001"
    assert result.ids[1] == "C000002"
    parent = [t for t in result.of_kind(SPLIT) if t.cluster_id == "C000001"][0]
    child = [t for t in result.of_kind(SPLIT) if t.cluster_id == "C000002"][0]
    assert parent.related == ("C000002",)
    assert child.related == ("C000001",)
    assert result.status["C000002"] == SPLIT
    assert result.churn.splits == 1
    assert result.churn.births == 1


def test_merge_absorbs_smaller_cluster():
    tracker = ClusterTracker()
    tracker.update({0: senders("a", 15), 1: senders("b", 6)}, 0)
    result = tracker.update({0: senders("a", 15) | senders("b", 6)}, 1)
    assert result.ids[0] == "C000001"
    assert kinds(result) == {"C000001": MERGED, "C000002": ABSORBED}
    absorbed = result.of_kind(ABSORBED)[0]
    assert absorbed.related == ("C000001",)
    assert result.of_kind(MERGED)[0].related == ("C000002",)
    assert result.churn.merges == 1
    assert result.churn.deaths == 1


def test_disappeared_then_reemerged_within_horizon():
    tracker = ClusterTracker(reemerge_windows=5)
    tracker.update({0: senders("a", 10), 1: senders("b", 10)}, 0)
    gone = tracker.update({0: senders("a", 10)}, 1)
    assert kinds(gone)["C000002"] == DISAPPEARED
    assert gone.churn.deaths == 1
    back = tracker.update({0: senders("a", 10), 1: senders("b", 9)}, 5)
    assert back.ids[1] == "C000002"
    transition = back.of_kind(REEMERGED)[0]
    assert transition.absent_windows == 4
    assert back.churn.reemergences == 1


def test_no_reemergence_beyond_horizon():
    tracker = ClusterTracker(reemerge_windows=5)
    tracker.update({0: senders("a", 10), 1: senders("b", 10)}, 0)
    tracker.update({0: senders("a", 10)}, 1)
    late = tracker.update({0: senders("a", 10), 1: senders("b", 10)}, 7)
    assert late.ids[1] == "C000003"
    assert late.status["C000003"] == EMERGED
    assert "C000002" not in tracker.known_ids()


def test_unrelated_cluster_emerges():
    tracker = ClusterTracker()
    tracker.update({0: senders("a", 10)}, 0)
    result = tracker.update({0: senders("a", 10), 1: senders("z", 10)}, 1)
    assert result.status[result.ids[1]] == EMERGED


def test_small_overlap_is_no_link():
    tracker = ClusterTracker(min_jaccard=0.3, min_overlap=0.8)
    tracker.update({0: senders("a", 20)}, 0)
    # 4 of 20 shared: Jaccard 0.11, overlap coefficient 0.2.
    result = tracker.update({0: senders("a", 4) | senders("x", 16)}, 1)
    assert kinds(result) == {"C000001": DISAPPEARED, "C000002": EMERGED}


def test_ids_stable_over_many_runs():
    tracker = ClusterTracker()
    ids = set()
    for window in range(30):
        # One member rotates each window: membership drifts slowly.
        result = tracker.update({0: senders("a", 10, start=window), 1: senders("b", 10)}, window)
        ids.update(result.ids.values())
    assert ids == {"C000001", "C000002"}


def test_window_must_increase():
    tracker = ClusterTracker()
    tracker.update({0: senders("a", 5)}, 3)
    with pytest.raises(StateError, match="window 3"):
        tracker.update({0: senders("a", 5)}, 3)


def test_save_load_continues_identically(tmp_path):
    runs = [
        {0: senders("a", 10), 1: senders("b", 10)},
        {0: senders("a", 10)},
        {0: senders("a", 6), 1: senders("a", 4, start=6), 2: senders("c", 7)},
        {0: senders("a", 10) | senders("c", 7), 1: senders("b", 10)},
    ]
    live = ClusterTracker()
    restored = ClusterTracker()
    for window, clusters in enumerate(runs[:2]):
        live.update(clusters, window)
        restored.update(clusters, window)
    restored.save(tmp_path)
    fresh = ClusterTracker()
    fresh.load(tmp_path)
    for window, clusters in enumerate(runs[2:], start=2):
        assert live.update(clusters, window) == fresh.update(clusters, window)


def test_load_rejects_bad_state(tmp_path):
    with pytest.raises(StateError, match="cannot read"):
        ClusterTracker().load(tmp_path)
    (tmp_path / "tracker.json").write_text('{"version": 99}')
    with pytest.raises(StateError, match="version"):
        ClusterTracker().load(tmp_path)


def test_bad_settings_rejected():
    with pytest.raises(ConfigError, match="min_jaccard"):
        ClusterTracker(min_jaccard=0)
    with pytest.raises(ConfigError, match="growth_ratio"):
        ClusterTracker(growth_ratio=1.0)
