"""Closed windows built from synthetic groups of coordinated senders.

Each group scans its own services: its members take turns in random order,
so members of one group co-occur and members of different groups rarely do.
Noise senders appear once here and there. The truth is the group name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence

HOUR_NS = 3_600_000_000_000


@dataclass
class SyntheticTelescope:
    """Generator of windows over ``groups`` groups of ``group_size`` senders."""

    groups: int = 8
    group_size: int = 25
    words_per_group: int = 400
    noise_senders: int = 50
    seed: int = 0
    churn_per_window: float = 0.0
    _rng: np.random.Generator = field(init=False)
    _members: list[list[str]] = field(init=False)
    _next_member: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._members = [[self._new_sender(g) for _ in range(self.group_size)] for g in range(self.groups)]

    def _new_sender(self, group: int) -> str:
        self._next_member += 1
        return f"10.{group}.{self._next_member // 250}.{self._next_member % 250}"

    def truth(self) -> dict[str, str]:
        """Group label of each current group member."""
        return {sender: f"group{g}" for g, members in enumerate(self._members) for sender in members}

    def window(self, index: int) -> ClosedWindow:
        """Return window ``index``; with churn, some members are replaced first."""
        self._churn()
        sentences = []
        activity: dict[str, SenderActivity] = {}
        start_ns = index * HOUR_NS
        for g, members in enumerate(self._members):
            picks = self._rng.integers(0, len(members), self.words_per_group)
            tokens = [members[i] for i in picks.tolist()]
            tokens += [f"192.168.{self._rng.integers(0, 200)}.{self._rng.integers(0, 250)}"
                       for _ in range(self.noise_senders // self.groups)]
            self._rng.shuffle(tokens)
            senders = tuple(_drop_repeats(tokens))
            sentences.append(Sentence(f"service{g}", senders))
            for position, sender in enumerate(senders):
                seen_ns = start_ns + 1 + position
                entry = activity.setdefault(sender, SenderActivity(first_ns=seen_ns))
                entry.packets += 1
                entry.last_ns = seen_ns
                entry.services.add(f"service{g}")
        words = sum(len(s.senders) for s in sentences)
        return ClosedWindow(index, start_ns, start_ns + HOUR_NS, tuple(sentences), activity, words, len(activity), 0)

    def _churn(self) -> None:
        if not self.churn_per_window:
            return
        for g, members in enumerate(self._members):
            replaced = self._rng.random(len(members)) < self.churn_per_window
            for i in np.flatnonzero(replaced).tolist():
                members[i] = self._new_sender(g)


def _drop_repeats(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        if not out or out[-1] != token:
            out.append(token)
    return out


def window_of(index: int, *sentences: tuple[str, ...]) -> ClosedWindow:
    """Build a window from literal sentences, without activity data."""
    built = tuple(Sentence(f"service{i}", tuple(s)) for i, s in enumerate(sentences))
    words = sum(len(s) for s in sentences)
    return ClosedWindow(index, index * HOUR_NS, (index + 1) * HOUR_NS, built, {}, words, 0, 0)


def knn_accuracy(vectors: np.ndarray, labels: list[str], k: int = 5) -> float:
    """Leave-one-out k-NN majority accuracy by cosine similarity (ties count as wrong)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    correct = 0
    for row, found in enumerate(neighbours):
        votes: dict[str, int] = {}
        for j in found.tolist():
            votes[labels[j]] = votes.get(labels[j], 0) + 1
        best = max(votes.values())
        winners = [label for label, count in votes.items() if count == best]
        correct += winners == [labels[row]]
    return correct / len(labels)
