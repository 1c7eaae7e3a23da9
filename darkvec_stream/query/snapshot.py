"""Read-only copies of the analyst state that HTTP threads read while the pipeline runs.

After each closed window the pipeline thread calls ``SnapshotPublisher.publish``,
which copies what later windows would change (sender vectors, labels, the
history of the senders that changed, the cluster journal) into a
``QuerySnapshot`` and swaps one reference. Request threads only read
``publisher.current`` and never take a lock that the pipeline thread waits on.
This module does not parse requests (see ``api``) and computes nothing the
pipeline has not computed, apart from neighbour searches over the copied vectors.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import faiss
import numpy as np

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.query.history import SenderHistory, SenderSummary, WindowSpan
from darkvec_stream.query.journal import ClusterJournal

logger = logging.getLogger(__name__)

KNN_SOURCE = "knn"


class LabelLike(Protocol):
    """A sender's label as the pipeline keeps it (``SenderLabel`` or ``SenderLabelView``)."""

    @property
    def label(self) -> str | None: ...

    @property
    def confidence(self) -> float: ...

    @property
    def source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """One sender's history as of one snapshot.

    The pairs keep the history's order; readers sort them (``ports_busiest``),
    because sorting here would cost the pipeline thread at every window.
    ``activity`` pairs a window index with packets and may still hold windows
    that have left the history since the copy was made
    (``QuerySnapshot.activity`` keeps only remembered windows).
    """

    first_seen_ns: int
    last_seen_ns: int
    packets: int
    windows_active: int
    mirai_packets: int
    ports: tuple[tuple[int, int], ...]
    services: tuple[tuple[str, int], ...]
    activity: tuple[tuple[int, int], ...]

    @classmethod
    def from_summary(cls, summary: SenderSummary) -> "SenderFacts":
        return cls(
            summary.first_seen_ns, summary.last_seen_ns, summary.packets, summary.windows_active,
            summary.mirai_packets, tuple(summary.ports.items()), tuple(summary.services.items()),
            tuple(summary.activity.items()),
        )

    def ports_busiest(self) -> list[tuple[int, int]]:
        """(port, packets), most packets first, ties by port."""
        return sorted(self.ports, key=lambda item: (-item[1], item[0]))

    def services_busiest(self) -> list[tuple[str, int]]:
        """(service, windows active), most windows first, ties by name."""
        return sorted(self.services, key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A sender near the queried one, with its cosine similarity."""

    sender: str
    similarity: float


class QuerySnapshot:
    """The model, labels, history and clusters as of one closed window; never modified.

    The mappings are read-only views. ``vectors`` must be a copy that
    nothing else holds: the first neighbour query normalises it in place
    and moves it into a FAISS flat inner-product index. That index, the
    sender-to-row map and the members of each cluster are built on first use
    by a request thread, under a lock that only request threads take, so
    publication costs the pipeline thread only the copies.
    """

    def __init__(
        self,
        *,
        senders: Sequence[str],
        vectors: np.ndarray,
        labels: Mapping[str, LabelLike],
        facts: Mapping[str, SenderFacts],
        windows: tuple[WindowSpan, ...],
        sender_cluster: Mapping[str, tuple[str, float | None]],
        cluster_window_index: int | None,
        profiles: Mapping[str, Mapping[str, Any]],
        transitions: Mapping[str, tuple[Mapping[str, Any], ...]],
        alerts: tuple[Mapping[str, Any], ...],
        windows_closed: int,
        published_s: float,
    ) -> None:
        self.senders = tuple(senders)
        self.labels = _read_only(labels)
        self.facts = _read_only(facts)
        self.windows = windows
        self.sender_cluster = _read_only(sender_cluster)
        self.cluster_window_index = cluster_window_index
        self.profiles = _read_only(profiles)
        self.transitions = _read_only(transitions)
        self.alerts = alerts
        self.windows_closed = windows_closed
        self.published_s = published_s
        self.dimensions = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self._vectors: np.ndarray | None = vectors
        self._index: Any = None
        # Reentrant: building the evidence index needs the sender index.
        self._lock = threading.RLock()
        self._row_of: dict[str, int] | None = None
        self._evidence: tuple[Any, tuple[str, ...]] | None = None
        self._members: dict[str, tuple[str, ...]] | None = None

    # -- senders -------------------------------------------------------------

    @property
    def window_index(self) -> int | None:
        """Index of the newest window the history remembers."""
        return self.windows[-1].index if self.windows else None

    def contains_sender(self, sender: str) -> bool:
        """True when the sender is in the model, the history or the labels."""
        return sender in self.facts or sender in self.labels or self.row(sender) is not None

    def row(self, sender: str) -> int | None:
        if self._row_of is None:
            with self._lock:
                if self._row_of is None:
                    self._row_of = {name: row for row, name in enumerate(self.senders)}
        return self._row_of.get(sender)

    def is_ground_truth(self, sender: str) -> bool:
        """True when the label comes from a list or the Mirai fingerprint, not from a vote."""
        value = self.labels.get(sender)
        return value is not None and value.label is not None and value.source != KNN_SOURCE

    def activity(self, sender: str) -> list[tuple[WindowSpan, int]]:
        """Packets of the sender in each remembered window, oldest first, zeros included."""
        facts = self.facts.get(sender)
        packets = dict(facts.activity) if facts is not None else {}
        return [(span, packets.get(span.index, 0)) for span in self.windows]

    # -- neighbours ----------------------------------------------------------

    def nearest(self, sender: str, k: int) -> list[Neighbour]:
        """Find the k senders most similar to ``sender`` (itself excluded), most similar first."""
        row = self.row(sender)
        if row is None or k < 1:
            return []
        index = self._sender_index()
        query = index.reconstruct(row).reshape(1, -1)
        return _search(index, query, k, self.senders, exclude=sender)

    def evidence(self, sender: str, k: int) -> list[Neighbour]:
        """Find the k ground-truth-labelled senders most similar to ``sender`` (itself excluded)."""
        row = self.row(sender)
        if row is None or k < 1:
            return []
        index, names = self._evidence_index()
        query = self._sender_index().reconstruct(row).reshape(1, -1)
        return _search(index, query, k, names, exclude=sender)

    def _sender_index(self) -> Any:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    index = faiss.IndexFlatIP(max(self.dimensions, 1))
                    if self._vectors is not None and len(self._vectors):
                        index.add(_unit_rows(self._vectors))
                    # The index contains its own copy, so drop ours to keep one in memory.
                    self._vectors = None
                    self._index = index
        return self._index

    def _evidence_index(self) -> tuple[Any, tuple[str, ...]]:
        if self._evidence is None:
            with self._lock:
                if self._evidence is None:
                    self._evidence = self._build_evidence_index()
        return self._evidence

    def _build_evidence_index(self) -> tuple[Any, tuple[str, ...]]:
        names = tuple(sender for sender in self.senders if self.is_ground_truth(sender))
        index = faiss.IndexFlatIP(max(self.dimensions, 1))
        if names:
            rows = np.fromiter((self.row(name) for name in names), dtype=np.int64, count=len(names))
            index.add(self._sender_index().reconstruct_batch(rows))
        return index, names

    # -- clusters ------------------------------------------------------------

    def cluster_ids(self) -> list[str]:
        """Clusters of the last run, sorted by id."""
        return sorted(self.profiles)

    def contains_cluster(self, cluster_id: str) -> bool:
        """True for clusters of the last run and for clusters with remembered transitions."""
        return cluster_id in self.profiles or cluster_id in self.transitions

    def members(self, cluster_id: str) -> tuple[str, ...]:
        """Senders of one cluster in the last run, sorted."""
        if self._members is None:
            with self._lock:
                if self._members is None:
                    grouped: dict[str, list[str]] = {}
                    for sender, (cid, _) in self.sender_cluster.items():
                        grouped.setdefault(cid, []).append(sender)
                    self._members = {cid: tuple(sorted(senders)) for cid, senders in grouped.items()}
        return self._members.get(cluster_id, ())

    def cluster_alerts(self, cluster_id: str) -> list[Mapping[str, Any]]:
        return [alert for alert in self.alerts if alert.get("cluster_id") == cluster_id]


class SnapshotSource(Protocol):
    """Anything that hands out the current snapshot (a ``SnapshotPublisher``)."""

    @property
    def current(self) -> QuerySnapshot | None: ...


class SnapshotPublisher:
    """Build snapshots on the pipeline thread and hand the newest to request threads.

    ``publish`` copies the history only for the senders named in ``changed``
    and reuses the previous copies of the others. Its cost therefore grows
    with the senders of the window, plus flat copies of the vectors and of
    the label and cluster maps. Pass every sender seen or removed since the
    previous call, or ``None`` to copy everything (after a restore).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._current: QuerySnapshot | None = None
        self._facts: dict[str, SenderFacts] = {}
        self._journal_run: int | None = None
        self._sender_cluster: Mapping[str, tuple[str, float | None]] = MappingProxyType({})

    @property
    def current(self) -> QuerySnapshot | None:
        """The newest snapshot, or None before the first ``publish``."""
        return self._current

    def publish(
        self,
        embedding: SenderEmbedding,
        history: SenderHistory,
        journal: ClusterJournal,
        labels: Mapping[str, LabelLike],
        windows_closed: int,
        changed: Iterable[str] | None = None,
    ) -> QuerySnapshot:
        """Copy the state, make the copy current and return it."""
        senders = embedding.keys()
        _, vectors = embedding.vectors(senders)
        snapshot = QuerySnapshot(
            senders=senders,
            vectors=vectors,
            labels=MappingProxyType(dict(labels)),
            facts=self._copy_facts(history, changed),
            windows=history.windows,
            sender_cluster=self._copy_clusters(journal, changed is None),
            cluster_window_index=journal.window_index,
            profiles=MappingProxyType(dict(journal.profiles)),
            transitions=MappingProxyType({cid: tuple(entries) for cid, entries in journal.transitions.items()}),
            alerts=tuple(journal.alerts),
            windows_closed=windows_closed,
            published_s=self._clock(),
        )
        self._current = snapshot
        return snapshot

    def _copy_facts(self, history: SenderHistory, changed: Iterable[str] | None) -> Mapping[str, SenderFacts]:
        facts = dict(self._facts) if changed is not None else {}
        names = history.senders() if changed is None else changed
        for sender in names:
            summary = history.get(sender)
            if summary is None:
                facts.pop(sender, None)
            else:
                facts[sender] = SenderFacts.from_summary(summary)
        if len(facts) != len(history):
            # A caller left out some changed senders: copying everything
            # once is slower but never serves a stale sender.
            logger.warning("snapshot held %s senders but the history %s: copying the whole history",
                           len(facts), len(history))
            facts = {sender: SenderFacts.from_summary(history.get(sender)) for sender in history.senders()}
        self._facts = facts
        return MappingProxyType(facts)

    def _copy_clusters(self, journal: ClusterJournal, full: bool) -> Mapping[str, tuple[str, float | None]]:
        # The membership map changes when a clustering run replaces it and
        # when senders leave the model; a size change reveals the latter.
        stale = (full or journal.window_index != self._journal_run
                 or len(journal.sender_cluster) != len(self._sender_cluster))
        if stale:
            self._sender_cluster = MappingProxyType(dict(journal.sender_cluster))
            self._journal_run = journal.window_index
        return self._sender_cluster


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise the rows in place (a float32 C copy if needed), so inner products are cosines."""
    unit = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(unit)
    return unit


def _search(index: Any, query: np.ndarray, k: int, names: Sequence[str], exclude: str) -> list[Neighbour]:
    found = min(k + 1, index.ntotal)
    if found < 1:
        return []
    # One OpenMP thread per request thread: libgomp keeps the setting per
    # calling thread, and a single query with two threads waits tens of
    # milliseconds for them to synchronise (measured 31 ms against 0.8 ms
    # at 100 k senders in bench/bench_query.py).
    faiss.omp_set_num_threads(1)
    similarities, rows = index.search(query, found)
    result = [
        Neighbour(names[row], round(float(similarity), 6))
        for similarity, row in zip(similarities[0], rows[0])
        if row >= 0 and names[row] != exclude
    ]
    return result[:k]


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    # Views made by the publisher are kept as they are. Anything else is
    # copied, so a caller that later mutates its dict cannot change the snapshot.
    return mapping if isinstance(mapping, MappingProxyType) else MappingProxyType(dict(mapping))

