"""Exact cosine nearest-neighbour search over sender vectors, in plain numpy.

Used by evaluation, where approximate search would blur the scores, and by
tests. The live daemon searches the FAISS ``SenderIndex`` instead; both
return ``[(sender, similarity), ...]`` lists, most similar first.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, Union

import numpy as np

from darkvec_stream.errors import InputError

Neighbours = list[tuple[str, float]]


class NeighbourIndex(Protocol):
    """Anything with the ``SenderIndex.search`` signature."""

    def search(self, vectors: np.ndarray, k: int) -> list[Neighbours]: ...


SearchFunction = Callable[[np.ndarray, int], list[Neighbours]]
NeighbourSearch = Union[NeighbourIndex, SearchFunction]


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm (zero rows stay zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise InputError(f"vectors must be a 2-D array (senders x dimensions), got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class ExactNeighbourSearch:
    """Brute-force cosine search over a fixed set of senders.

    Results are reproducible: the returned neighbours are ordered by
    similarity, then by position in ``senders``. ``block_rows`` bounds memory: one block
    of queries costs ``block_rows * len(senders) * 4`` bytes.

    >>> search = ExactNeighbourSearch(["a", "b"], np.array([[1.0, 0.0], [0.6, 0.8]]))
    >>> [(s, round(x, 2)) for s, x in search.search(np.array([[1.0, 0.0]]), 2)[0]]
    [('a', 1.0), ('b', 0.6)]
    """

    def __init__(self, senders: Sequence[str], vectors: np.ndarray, block_rows: int = 1024) -> None:
        if len(senders) != len(vectors):
            raise InputError(f"{len(senders)} senders but {len(vectors)} vectors; they must pair one to one")
        self._senders = list(senders)
        self._matrix = normalise_rows(vectors) if len(senders) else np.zeros((0, 1), dtype=np.float32)
        self._block_rows = max(1, block_rows)

    def __len__(self) -> int:
        return len(self._senders)

    def search(self, vectors: np.ndarray, k: int) -> list[Neighbours]:
        """Return the ``k`` most similar senders to each query vector."""
        queries = normalise_rows(vectors)
        count = min(k, len(self._senders))
        if count <= 0:
            return [[] for _ in range(len(queries))]
        results: list[Neighbours] = []
        for start in range(0, len(queries), self._block_rows):
            block = queries[start : start + self._block_rows] @ self._matrix.T
            results.extend(self._top(block, count))
        return results

    def _top(self, similarities: np.ndarray, count: int) -> list[Neighbours]:
        if count < similarities.shape[1]:
            candidates = np.argpartition(-similarities, count - 1, axis=1)[:, :count]
        else:
            candidates = np.broadcast_to(np.arange(similarities.shape[1]), similarities.shape)
        rows = np.arange(similarities.shape[0])[:, None]
        chosen = similarities[rows, candidates]
        # Sort by similarity descending, then by sender position ascending.
        order = np.lexsort((candidates, -chosen), axis=1)
        candidates = np.take_along_axis(candidates, order, axis=1)
        chosen = np.take_along_axis(chosen, order, axis=1)
        senders = self._senders
        return [
            [(senders[index], float(similarity)) for index, similarity in zip(row_index, row_similarity)]
            for row_index, row_similarity in zip(candidates.tolist(), chosen.tolist())
        ]


def run_search(search: NeighbourSearch, vectors: np.ndarray, k: int) -> list[Neighbours]:
    """Call an index's ``search`` method or a plain search function."""
    method = getattr(search, "search", None)
    if callable(method):
        return list(method(vectors, k))
    if callable(search):
        return list(search(vectors, k))
    raise InputError(f"{type(search).__name__} is not a neighbour search: it needs a search(vectors, k) method")
