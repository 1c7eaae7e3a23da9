"""Snapshots: isolated from later windows, incremental copies equal full ones, exact neighbours."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.query import ClusterJournal, SenderHistory
from darkvec_stream.query.snapshot import SenderFacts, SnapshotPublisher
from darkvec_stream.query.state import SenderLabelView
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence

HOUR_NS = 3_600_000_000_000
SENDERS = [f"192.0.2.{n}" for n in range(1, 13)]


def window(index: int, senders: list[str], packets: int = 2) -> ClosedWindow:
    start = index * HOUR_NS
    activity = {
        sender: SenderActivity(packets=packets + position % 3, first_ns=start + position, last_ns=start + 10 + position,
                               dst_ports={23: packets, 2323 + position % 2: 1}, services={"telnet"})
        for position, sender in enumerate(senders)
    }
    tokens = tuple(sender for _ in range(3) for sender in senders)
    return ClosedWindow(index, start, start + HOUR_NS, (Sentence("telnet", tokens),), activity,
                        sum(a.packets for a in activity.values()), len(activity), 0)


class State:
    """Real embedding, history and journal fed window by window, as the pipeline does."""

    def __init__(self, max_windows: int = 3, expiry_s: float = 7 * 86400) -> None:
        self.embedding = SenderEmbedding(vector_size=8, context=3, epochs_per_window=1, seed=2, expiry_s=expiry_s,
                                         compact_every_windows=1, compact_expired_share=0.01)
        self.removed: set[str] = set()
        self.history = SenderHistory(max_windows=max_windows, max_ports=2)
        self.journal = ClusterJournal()
        self.labels: dict[str, SenderLabelView] = {}
        self.windows_closed = 0

    def feed(self, closed: ClosedWindow) -> set[str]:
        update = self.embedding.update(closed)
        self.removed |= set(update.removed)
        self.history.forget(update.removed)
        self.history.observe(closed)
        for sender in closed.activity:
            self.labels[sender] = SenderLabelView("mirai" if sender.endswith("1") else None, 0.5, "knn")
        self.windows_closed += 1
        return set(closed.activity) | set(update.removed)

    def publish(self, publisher: SnapshotPublisher, changed: set[str] | None):  # type: ignore[no-untyped-def]
        return publisher.publish(self.embedding, self.history, self.journal, self.labels, self.windows_closed, changed)


def test_snapshot_does_not_see_later_windows() -> None:
    state = State()
    state.feed(window(0, SENDERS[:6]))
    publisher = SnapshotPublisher()
    first = state.publish(publisher, None)
    before = (first.facts[SENDERS[0]], first.labels[SENDERS[0]], first.windows, first.senders)
    state.feed(window(1, SENDERS[:8], packets=9))
    second = state.publish(publisher, set(window(1, SENDERS[:8]).activity))
    assert (first.facts[SENDERS[0]], first.labels[SENDERS[0]], first.windows, first.senders) == before
    assert first.facts[SENDERS[0]].packets == 2
    assert second.facts[SENDERS[0]].packets == 2 + 9
    assert publisher.current is second
    with pytest.raises(TypeError):
        first.labels["198.51.100.1"] = first.labels[SENDERS[0]]  # type: ignore[index]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SENDERS), min_size=2, max_size=8, unique=True), min_size=1, max_size=7))
def test_incremental_copy_equals_full_copy(windows: list[list[str]]) -> None:
    # Senders absent for two windows expire, so removals are covered too.
    state = State(max_windows=3, expiry_s=2 * 3600)
    incremental = SnapshotPublisher()
    state.publish(incremental, None)
    for index, senders in enumerate(windows):
        changed = state.feed(window(index, senders))
        snapshot = state.publish(incremental, changed)
        full = state.publish(SnapshotPublisher(), None)
        # Copies kept from earlier windows may list windows that have since
        # left the history; ``activity()`` filters them, so compare the rest.
        assert {s: replace(f, activity=()) for s, f in snapshot.facts.items()} == {
            s: replace(f, activity=()) for s, f in full.facts.items()}
        for sender in snapshot.facts:
            assert snapshot.activity(sender) == full.activity(sender)
            summary = state.history.get(sender)
            assert [p for _, p in snapshot.activity(sender) if p] == [summary.activity[i] for i in sorted(summary.activity)]


def test_missing_changes_copy_everything() -> None:
    state = State()
    publisher = SnapshotPublisher()
    state.feed(window(0, SENDERS[:4]))
    state.publish(publisher, None)
    state.feed(window(1, SENDERS[:9]))
    snapshot = state.publish(publisher, set())
    assert set(snapshot.facts) == set(SENDERS[:9])
    assert snapshot.facts[SENDERS[8]] == SenderFacts.from_summary(state.history.get(SENDERS[8]))


def test_nearest_matches_exact_cosine() -> None:
    state = State()
    for index in range(3):
        state.feed(window(index, SENDERS[index:index + 9]))
    snapshot = state.publish(SnapshotPublisher(), None)
    keys, vectors = state.embedding.vectors(state.embedding.keys())
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row, sender in enumerate(keys):
        similarities = unit @ unit[row]
        order = [keys[i] for i in np.argsort(-similarities, kind="stable") if keys[i] != sender][:4]
        found = snapshot.nearest(sender, 4)
        assert [item.sender for item in found] == order
        assert [item.similarity for item in found] == pytest.approx(sorted(similarities, reverse=True)[1:5], abs=1e-5)


def test_evidence_uses_only_ground_truth() -> None:
    state = State()
    state.feed(window(0, SENDERS))
    state.labels[SENDERS[2]] = SenderLabelView("shodan", 1.0, "scanners")
    state.labels[SENDERS[5]] = SenderLabelView("mirai", 1.0, "mirai-fingerprint")
    snapshot = state.publish(SnapshotPublisher(), None)
    evidence = snapshot.evidence(SENDERS[0], 7)
    assert sorted(item.sender for item in evidence) == [SENDERS[2], SENDERS[5]]
    assert [item.sender for item in snapshot.evidence(SENDERS[2], 7)] == [SENDERS[5]]


def test_unknown_sender_has_no_neighbours() -> None:
    state = State()
    state.feed(window(0, SENDERS[:3]))
    snapshot = state.publish(SnapshotPublisher(), None)
    assert snapshot.nearest("198.51.100.7", 3) == []
    assert snapshot.contains_sender("198.51.100.7") is False


def test_empty_state_publishes() -> None:
    snapshot = State().publish(SnapshotPublisher(), None)
    assert snapshot.senders == ()
    assert snapshot.window_index is None
    assert snapshot.nearest(SENDERS[0], 3) == []


def test_expired_senders_leave_the_snapshot() -> None:
    state = State(expiry_s=2 * 3600)
    publisher = SnapshotPublisher()
    for index, senders in enumerate([SENDERS[:6], SENDERS[6:], SENDERS[6:], SENDERS[6:]]):
        snapshot = state.publish(publisher, state.feed(window(index, senders)))
    assert state.removed >= set(SENDERS[:6])
    assert not set(SENDERS[:6]) & set(snapshot.facts)
    assert not set(SENDERS[:6]) & set(snapshot.senders)


def test_concurrent_first_queries_agree() -> None:
    state = State()
    state.feed(window(0, SENDERS))
    state.labels[SENDERS[3]] = SenderLabelView("shodan", 1.0, "scanners")
    expected = state.publish(SnapshotPublisher(), None)
    expected_answers = [(expected.nearest(s, 3), expected.evidence(s, 3)) for s in SENDERS]
    snapshot = state.publish(SnapshotPublisher(), None)
    answers: dict[int, list] = {}

    def ask(worker: int) -> None:
        answers[worker] = [(snapshot.evidence(s, 3) if worker % 2 else snapshot.nearest(s, 3), s) for s in SENDERS]

    threads = [threading.Thread(target=ask, args=(worker,), daemon=True) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "lazy index building must not deadlock"
    for worker, found in answers.items():
        for (result, sender), (nearest, evidence) in zip(found, expected_answers):
            assert result == (evidence if worker % 2 else nearest), sender


def test_evidence_before_any_neighbour_query() -> None:
    # The evidence index is built from the sender index, which is then not
    # built yet: both are built under the same lock.
    state = State()
    state.feed(window(0, SENDERS))
    state.labels[SENDERS[3]] = SenderLabelView("shodan", 1.0, "scanners")
    snapshot = state.publish(SnapshotPublisher(), None)
    found: list = []
    worker = threading.Thread(target=lambda: found.append(snapshot.evidence(SENDERS[0], 3)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert found and [item.sender for item in found[0]] == [SENDERS[3]]
