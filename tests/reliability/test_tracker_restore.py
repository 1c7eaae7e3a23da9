"""Cluster tracking gives the same transitions whether or not it was saved and restored in between.

A sender can belong to several dormant clusters from different runs. The
overlap of a re-emerging cluster must count it for each of them, or the
result depends on the order of the dormant map, which a restore changes.
"""

from __future__ import annotations

from pathlib import Path

from darkvec_stream.clusters.tracking import REEMERGED, ClusterTracker

FIRST = {"a", "b", "c", "d", "e", "f"}
SECOND = {"a", "b", "c", "g", "h", "i", "j", "k", "l", "m"}
STEADY = {"p", "q", "r", "s", "t", "u"}
RETURNING = {"a", "b", "c", "d", "e", "f", "g"}


def _run_until_dormant(tracker: ClusterTracker) -> None:
    tracker.update({0: FIRST, 1: STEADY}, 1)
    tracker.update({1: STEADY}, 2)
    tracker.update({0: SECOND, 1: STEADY}, 3)
    tracker.update({1: STEADY}, 4)


def test_reemergence_counts_shared_dormant_members(tmp_path: Path) -> None:
    live = ClusterTracker()
    _run_until_dormant(live)
    restored = ClusterTracker()
    _run_until_dormant(restored)
    restored.save(tmp_path)
    restored = ClusterTracker()
    restored.load(tmp_path)

    live_result = live.update({0: RETURNING, 1: STEADY}, 5)
    restored_result = restored.update({0: RETURNING, 1: STEADY}, 5)

    reemerged = [t for t in live_result.transitions if t.kind == REEMERGED]
    assert len(reemerged) == 1
    assert reemerged[0].cluster_id == "C000001"
    assert reemerged[0].jaccard == 6 / 7
    assert restored_result.transitions == live_result.transitions
