"""FAISS nearest-neighbour search over sender vectors by cosine similarity.

Vectors are L2-normalised float32 rows, so inner product is cosine
similarity. The index keeps exactly one live entry per sender and a stable
int64 id for each live sender. It does not decide which senders to add or
drop (``apply_embedding_update`` does), and it does not label or cluster.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from darkvec_stream.embedding.state import read_json, require_keys, write_json
from darkvec_stream.errors import ConfigError, InputError, StateError

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")
STATE_FORMAT = "darkvec-stream/sender-index/1"

# faiss prints a warning below 39 training points per IVF list.
_IVF_POINTS_PER_LIST = 39


def normalise_rows(vectors: np.ndarray, senders: Sequence[str] | None = None) -> np.ndarray:
    """Return a contiguous float32 copy with unit rows; reject zero, NaN and inf rows.

    ``senders`` names the rows in the error message when given.
    """
    matrix = np.array(vectors, dtype=np.float32, copy=True, order="C")
    if matrix.ndim != 2:
        raise InputError(f"vectors must be a 2-D matrix, got shape {matrix.shape}")
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero(~finite | (norms == 0) | ~np.isfinite(norms))
    if len(bad):
        row = int(bad[0])
        who = senders[row] if senders is not None else f"row {row}"
        problem = "NaN or infinite values" if not finite[row] else "a zero (or overflowing) norm"
        raise InputError(
            f"vector of {who} has {problem} ({len(bad)} bad rows in total); "
            "only finite non-zero vectors can be compared by cosine similarity"
        )
    matrix /= norms[:, None]
    return matrix


class SenderIndex:
    """Cosine nearest-neighbour index of senders over FAISS.

    ``kind="flat"`` is exact (``IndexIDMap2(IndexFlatIP)``). ``"hnsw"`` cannot
    remove entries, so an update marks the old entry stale and the graph is
    rebuilt once stale entries exceed ``hnsw_stale_share``. ``"ivf"`` searches
    exactly until ``ivf_min_train_vectors`` senders are present, then trains
    ``IndexIVFFlat`` on the current vectors, updates vectors in place, and
    retrains when the size has doubled or halved since the last training.
    FAISS's OpenMP thread count is process-wide: it is set to ``threads``
    before each call.

    >>> index = SenderIndex(dimension=2)
    >>> index.upsert(["a", "b", "c"], np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32))
    >>> [(s, round(score, 3)) for s, score in index.search(np.array([[1, 0]]), k=2, exclude_self=["a"])[0]]
    [('b', 0.994), ('c', 0.0)]
    """

    def __init__(
        self,
        dimension: int,
        kind: str = "flat",
        threads: int = 1,
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 40,
        hnsw_ef_search: int = 64,
        hnsw_stale_share: float = 0.2,
        ivf_nprobe: int = 32,
        ivf_min_train_vectors: int = 20_000,
    ) -> None:
        if kind not in INDEX_KINDS:
            raise ConfigError(f"index kind {kind!r} is invalid; use one of {', '.join(INDEX_KINDS)}")
        for name, value in (("dimension", dimension), ("threads", threads), ("hnsw_m", hnsw_m),
                            ("hnsw_ef_construction", hnsw_ef_construction), ("hnsw_ef_search", hnsw_ef_search),
                            ("ivf_nprobe", ivf_nprobe), ("ivf_min_train_vectors", ivf_min_train_vectors)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid: expected an integer >= 1")
        if not 0 < hnsw_stale_share <= 1:
            raise ConfigError(f"hnsw_stale_share={hnsw_stale_share} must be in (0, 1]")
        self.dimension = dimension
        self.kind = kind
        self.threads = threads
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.hnsw_ef_search = hnsw_ef_search
        self.hnsw_stale_share = float(hnsw_stale_share)
        self.ivf_nprobe = ivf_nprobe
        self.ivf_min_train_vectors = ivf_min_train_vectors

        self._id_of: dict[str, int] = {}        # stable id of each live sender
        self._slot_of: dict[str, int] = {}      # FAISS id holding the live vector
        self._sender_of_slot: dict[int, str] = {}
        self._next_id = 0
        self._next_slot = 0
        self._ivf_trained_size = 0
        self._index: Any = self._empty_index()

    # -- read access -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._id_of)

    def __contains__(self, sender: object) -> bool:
        return sender in self._id_of

    def id_of(self, sender: str) -> int | None:
        """Stable int64 id of a live sender; kept until the sender is removed."""
        return self._id_of.get(sender)

    def senders(self) -> list[str]:
        return list(self._id_of)

    @property
    def stale_entries(self) -> int:
        """Entries in the FAISS index that no longer belong to a live sender (HNSW only)."""
        return int(self._index.ntotal) - len(self._slot_of)

    @property
    def searches_exactly(self) -> bool:
        return self.kind == "flat" or (self.kind == "ivf" and not self._ivf_trained_size)

    # -- changes -----------------------------------------------------------

    def upsert(self, senders: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``senders`` in one batch."""
        senders = list(senders)
        if len(set(senders)) != len(senders):
            raise InputError("upsert received the same sender twice in one batch; pass each sender once")
        matrix = normalise_rows(vectors, senders)
        if matrix.shape != (len(senders), self.dimension):
            raise InputError(
                f"upsert needs one {self.dimension}-dimensional vector per sender: "
                f"{len(senders)} senders, matrix of shape {matrix.shape}"
            )
        for sender in senders:
            if type(sender) is not str or not sender:
                raise InputError(f"sender {sender!r} is invalid: senders are non-empty strings")
        if not senders:
            return
        faiss.omp_set_num_threads(self.threads)
        for sender in senders:
            if sender not in self._id_of:
                self._id_of[sender] = self._next_id
                self._next_id += 1
        if self.kind == "hnsw":
            self._upsert_hnsw(senders, matrix)
        elif self.kind == "ivf" and self._ivf_trained_size:
            self._upsert_ivf(senders, matrix)
        else:
            self._replace(senders, matrix)
        self._maintain()

    def remove(self, senders: Sequence[str]) -> int:
        """Remove live senders (unknown ones are ignored); return how many were removed."""
        present = [s for s in senders if s in self._id_of]
        if not present:
            return 0
        faiss.omp_set_num_threads(self.threads)
        slots = np.array([self._slot_of[s] for s in present], dtype=np.int64)
        for sender in present:
            del self._id_of[sender]
            del self._sender_of_slot[self._slot_of.pop(sender)]
        if self.kind != "hnsw":
            # remove_ids scans the whole index, hence one call per batch.
            self._index.remove_ids(slots)
        self._maintain()
        return len(present)

    def _replace(self, senders: list[str], matrix: np.ndarray) -> None:
        """Remove the old entries of ``senders`` in one scan, then add the new ones (flat, untrained IVF)."""
        old = np.array([self._slot_of[s] for s in senders if s in self._slot_of], dtype=np.int64)
        if len(old):
            self._index.remove_ids(old)
        slots = np.array([self._id_of[s] for s in senders], dtype=np.int64)
        self._index.add_with_ids(matrix, slots)
        self._assign_slots(senders, slots)

    def _upsert_ivf(self, senders: list[str], matrix: np.ndarray) -> None:
        known = np.array([s in self._slot_of for s in senders], dtype=bool)
        if known.any():
            ids = np.array([self._slot_of[s] for s in senders if s in self._slot_of], dtype=np.int64)
            self._index.update_vectors(ids, np.ascontiguousarray(matrix[known]))
        if not known.all():
            fresh = [s for s, k in zip(senders, known.tolist()) if not k]
            slots = np.array([self._id_of[s] for s in fresh], dtype=np.int64)
            self._index.add_with_ids(np.ascontiguousarray(matrix[~known]), slots)
            self._assign_slots(fresh, slots)

    def _upsert_hnsw(self, senders: list[str], matrix: np.ndarray) -> None:
        # The old entry of an updated sender stays in the graph as a stale
        # slot that search skips, and a new slot stores the new vector.
        for sender in senders:
            old = self._slot_of.pop(sender, None)
            if old is not None:
                del self._sender_of_slot[old]
        slots = np.arange(self._next_slot, self._next_slot + len(senders), dtype=np.int64)
        self._next_slot += len(senders)
        self._index.add_with_ids(matrix, slots)
        self._assign_slots(senders, slots)

    def _assign_slots(self, senders: list[str], slots: np.ndarray) -> None:
        for sender, slot in zip(senders, slots.tolist()):
            self._slot_of[sender] = slot
            self._sender_of_slot[slot] = sender

    def _maintain(self) -> None:
        """Rebuild HNSW when too stale; train or retrain IVF when the size calls for it."""
        if self.kind == "hnsw":
            if self.stale_entries > self.hnsw_stale_share * max(self._index.ntotal, 1):
                self.rebuild()
        elif self.kind == "ivf":
            size = len(self._slot_of)
            trained = self._ivf_trained_size
            if (not trained and size >= self.ivf_min_train_vectors) or (
                trained and (size > 2 * trained or size < trained // 2)
            ):
                self.rebuild()

    def rebuild(self) -> None:
        """Build a fresh FAISS index from the live vectors (drops stale HNSW entries, retrains IVF)."""
        faiss.omp_set_num_threads(self.threads)
        senders = list(self._slot_of)
        matrix = self._live_vectors(senders)
        self._ivf_trained_size = 0
        self._index = self._empty_index(train_on=matrix)
        self._slot_of.clear()
        self._sender_of_slot.clear()
        if not senders:
            return
        if self.kind == "hnsw":
            self._next_slot = 0
            self._upsert_hnsw(senders, matrix)
        else:
            slots = np.array([self._id_of[s] for s in senders], dtype=np.int64)
            self._index.add_with_ids(matrix, slots)
            self._assign_slots(senders, slots)
        logger.info("rebuilt the %s sender index with %s senders", self.kind, len(senders))

    def _live_vectors(self, senders: list[str]) -> np.ndarray:
        if not senders:
            return np.zeros((0, self.dimension), dtype=np.float32)
        slots = np.array([self._slot_of[s] for s in senders], dtype=np.int64)
        if isinstance(self._index, faiss.IndexIDMap2):
            # Read the whole storage once instead of one reconstruct per id.
            stored_slots = faiss.vector_to_array(self._index.id_map)
            stored = self._index.index.reconstruct_n(0, self._index.ntotal)
            position = {int(slot): row for row, slot in enumerate(stored_slots.tolist())}
            return np.ascontiguousarray(stored[[position[int(slot)] for slot in slots]])
        return np.ascontiguousarray(self._index.reconstruct_batch(slots))

    def _empty_index(self, train_on: np.ndarray | None = None) -> Any:
        if self.kind == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = self.hnsw_ef_construction
            graph.hnsw.efSearch = self.hnsw_ef_search
            return faiss.IndexIDMap2(graph)
        if self.kind == "ivf" and train_on is not None and len(train_on) >= self.ivf_min_train_vectors:
            return self._trained_ivf(train_on)
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _trained_ivf(self, matrix: np.ndarray) -> Any:
        lists = max(1, min(int(4 * math.sqrt(len(matrix))), len(matrix) // _IVF_POINTS_PER_LIST))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dimension), self.dimension, lists,
                                   faiss.METRIC_INNER_PRODUCT)
        index.train(matrix)
        index.nprobe = self.ivf_nprobe
        # A hashtable direct map lets update_vectors and reconstruct find ids.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._ivf_trained_size = len(matrix)
        return index

    # -- search ------------------------------------------------------------

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        exclude_self: Sequence[str | None] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Return, for each query row, up to ``k`` ``(sender, cosine)`` pairs, best first.

        ``exclude_self`` names the sender of each query row (or None) so it is
        left out of its own result. Results never contain padding, stale or
        removed entries; fewer than ``k`` come back only when fewer senders
        are live. Batch the queries: one call per row is slow with several
        OpenMP threads.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k={k!r} is invalid: expected an integer >= 1")
        queries = normalise_rows(np.atleast_2d(vectors))
        if queries.shape[1] != self.dimension:
            raise InputError(f"query vectors have {queries.shape[1]} dimensions, the index has {self.dimension}")
        if exclude_self is not None and len(exclude_self) != len(queries):
            raise InputError(f"exclude_self names {len(exclude_self)} senders for {len(queries)} query rows")
        if not len(queries):
            return []
        faiss.omp_set_num_threads(self.threads)
        excluded = list(exclude_self) if exclude_self is not None else [None] * len(queries)
        results: list[list[tuple[str, float]] | None] = [None] * len(queries)
        pending = np.arange(len(queries))
        # Stale HNSW entries can crowd out live ones: start wider and widen
        # while some row is still short.
        wanted = k + 1 if not self.stale_entries else 2 * (k + 1)
        while len(pending):
            pending = self._search_round(queries, pending, min(wanted, self._index.ntotal), k, excluded, results)
            if wanted >= self._index.ntotal:
                break
            wanted *= 2
        if len(pending):
            # HNSW and IVF may miss live entries even at full width, for an
            # unreachable graph node or an unprobed list, so search exactly.
            self._search_exactly(queries, pending, k, excluded, results)
        return [row if row is not None else [] for row in results]

    def _search_exactly(
        self,
        queries: np.ndarray,
        rows: np.ndarray,
        k: int,
        excluded: list[str | None],
        results: list[list[tuple[str, float]] | None],
    ) -> None:
        senders = list(self._slot_of)
        scores = queries[rows] @ self._live_vectors(senders).T
        for position, row in enumerate(rows.tolist()):
            order = np.argsort(-scores[position], kind="stable")
            found = [(senders[i], float(scores[position, i])) for i in order.tolist() if senders[i] != excluded[row]]
            results[row] = found[:k]

    def _search_round(
        self,
        queries: np.ndarray,
        rows: np.ndarray,
        width: int,
        k: int,
        excluded: list[str | None],
        results: list[list[tuple[str, float]] | None],
    ) -> np.ndarray:
        """Search ``rows`` with ``width`` candidates; return rows still short of ``k`` neighbours."""
        if width <= 0:
            for row in rows.tolist():
                results[row] = []
            return np.zeros(0, dtype=np.int64)
        scores, slots = self._index.search(np.ascontiguousarray(queries[rows]), width)
        short: list[int] = []
        for position, row in enumerate(rows.tolist()):
            found: list[tuple[str, float]] = []
            for slot, score in zip(slots[position].tolist(), scores[position].tolist()):
                sender = self._sender_of_slot.get(slot)  # -1 padding and stale slots map to None
                if sender is None or sender == excluded[row]:
                    continue
                found.append((sender, score))
                if len(found) == k:
                    break
            results[row] = found
            if len(found) < k and len(found) < len(self._slot_of) - (excluded[row] in self._slot_of):
                short.append(row)
        return np.array(short, dtype=np.int64)

    # -- persistence -------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the FAISS index (``faiss.write_index``) and the id maps (JSON) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / "faiss.index"))
        write_json(directory / "index.json", {
            "format": STATE_FORMAT,
            "settings": self.settings(),
            "next_id": self._next_id,
            "next_slot": self._next_slot,
            "ivf_trained_size": self._ivf_trained_size,
            "senders": list(self._id_of),
            "ids": list(self._id_of.values()),
            "slots": [self._slot_of[s] for s in self._id_of],
        })

    @classmethod
    def load(cls, directory: Path) -> SenderIndex:
        """Rebuild an index saved by ``save``; raise ``StateError`` for missing or inconsistent files."""
        directory = Path(directory)
        meta_path = directory / "index.json"
        meta = read_json(meta_path, dict)
        require_keys(meta_path, meta, ("format", "settings", "next_id", "next_slot", "ivf_trained_size",
                                       "senders", "ids", "slots"))
        if meta["format"] != STATE_FORMAT:
            raise StateError(f"{meta_path}: format {meta['format']!r} found, {STATE_FORMAT!r} expected")
        try:
            index = cls(**meta["settings"])
        except (ConfigError, TypeError) as error:
            raise StateError(f"{meta_path}: invalid saved settings ({error})") from error
        senders, ids, slots = meta["senders"], meta["ids"], meta["slots"]
        if not (len(senders) == len(ids) == len(slots)) or len(set(senders)) != len(senders):
            raise StateError(f"{meta_path}: senders, ids and slots differ in length or repeat a sender")
        index._load_faiss(directory / "faiss.index")
        index._id_of = {str(s): int(i) for s, i in zip(senders, ids)}
        index._slot_of = {str(s): int(slot) for s, slot in zip(senders, slots)}
        index._sender_of_slot = {slot: s for s, slot in index._slot_of.items()}
        index._next_id = int(meta["next_id"])
        index._next_slot = int(meta["next_slot"])
        index._ivf_trained_size = int(meta["ivf_trained_size"])
        if index._index.ntotal < len(senders) or index._index.d != index.dimension:
            raise StateError(f"{directory}: the FAISS index does not match index.json "
                             f"({index._index.ntotal} entries of dimension {index._index.d})")
        return index

    def _load_faiss(self, path: Path) -> None:
        if not path.is_file():
            raise StateError(f"{path}: missing FAISS index file")
        try:
            self._index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise StateError(f"{path}: unreadable FAISS index ({error})") from error
        if isinstance(self._index, faiss.IndexIVFFlat):
            self._index.nprobe = self.ivf_nprobe
        elif isinstance(self._index, faiss.IndexIDMap2) and self.kind == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.hnsw_ef_search

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, as saved with the state."""
        return {
            "dimension": self.dimension,
            "kind": self.kind,
            "threads": self.threads,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construction": self.hnsw_ef_construction,
            "hnsw_ef_search": self.hnsw_ef_search,
            "hnsw_stale_share": self.hnsw_stale_share,
            "ivf_nprobe": self.ivf_nprobe,
            "ivf_min_train_vectors": self.ivf_min_train_vectors,
        }
