"""Bounded occurrence counts of senders not yet in the Word2Vec vocabulary.

gensim counts ``min_count`` per ``build_vocab`` call, so a sender seen twice
an hour would never reach ``min_count=10`` with hourly windows. This counter
keeps the cumulative count across windows instead. It drops senders not seen
for the expiry horizon and, when full, the least recently seen ones, and it does
not touch the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


class PendingSenders:
    """Cumulative counts and last-seen times of senders below ``min_count``."""

    def __init__(self, max_senders: int) -> None:
        if max_senders < 1:
            raise ValueError(f"max_senders={max_senders} must be at least 1")
        self.max_senders = max_senders
        self._count: dict[str, int] = {}
        self._last_seen_ns: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._count)

    def __contains__(self, sender: object) -> bool:
        return sender in self._count

    def count(self, sender: str) -> int:
        return self._count.get(sender, 0)

    def add(self, sender: str, occurrences: int, seen_ns: int) -> int:
        """Add occurrences of one sender and return its cumulative count."""
        total = self._count.get(sender, 0) + occurrences
        self._count[sender] = total
        self._last_seen_ns[sender] = seen_ns
        return total

    def pop(self, sender: str) -> int:
        """Forget a sender (it joined the vocabulary) and return its count."""
        self._last_seen_ns.pop(sender, None)
        return self._count.pop(sender, 0)

    def expire(self, cutoff_ns: int) -> list[str]:
        """Forget senders last seen before ``cutoff_ns``, then trim to the bound."""
        dropped = [sender for sender, seen_ns in self._last_seen_ns.items() if seen_ns < cutoff_ns]
        excess = len(self._count) - len(dropped) - self.max_senders
        if excess > 0:
            dropped.extend(self._least_recent(excess, exclude=set(dropped)))
        for sender in dropped:
            self.pop(sender)
        return dropped

    def _least_recent(self, how_many: int, exclude: set[str]) -> list[str]:
        candidates = [sender for sender in self._last_seen_ns if sender not in exclude]
        seen_ns = np.fromiter((self._last_seen_ns[s] for s in candidates), dtype=np.int64, count=len(candidates))
        # A stable sort keeps insertion order among equal times, so the
        # choice is deterministic across save and load.
        order = np.argsort(seen_ns, kind="stable")[:how_many]
        return [candidates[i] for i in order.tolist()]

    def items(self) -> Iterable[tuple[str, int, int]]:
        """Yield ``(sender, count, last_seen_ns)`` in insertion order."""
        for sender, count in self._count.items():
            yield sender, count, self._last_seen_ns[sender]

    @classmethod
    def from_items(cls, max_senders: int, items: Iterable[tuple[str, int, int]]) -> PendingSenders:
        pending = cls(max_senders)
        for sender, count, seen_ns in items:
            pending._count[sender] = int(count)
            pending._last_seen_ns[sender] = int(seen_ns)
        return pending

    def counts(self) -> Mapping[str, int]:
        return self._count
