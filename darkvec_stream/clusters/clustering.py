"""Cluster sender vectors: a pruned kNN similarity graph split by Leiden or Louvain, or HDBSCAN.

The input is sender keys with L2-normalised vectors; the output is one
cluster label per sender (``-1`` for noise), per-sender cosine silhouettes
and cluster centroids. It does not decide which senders are clustered or
when, and it keeps no state between runs (tracking does that).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Literal, Sequence

import faiss
import igraph
import leidenalg
import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.metrics import silhouette_samples

from darkvec_stream.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

Method = Literal["leiden", "louvain", "hdbscan", "darkvec-paper"]
METHODS: tuple[str, ...] = ("leiden", "louvain", "hdbscan", "darkvec-paper")
NOISE = -1

# The published DarkVec recipe: a k'=3 nearest-neighbour graph, cosine edge
# weights, Louvain at the classic modularity resolution, every community kept.
PAPER_K = 3
PAPER_RESOLUTION = 1.0


@dataclass(frozen=True, slots=True)
class Clustering:
    """One clustering run over a set of senders.

    ``labels[i]`` is the cluster of ``keys[i]``: clusters are numbered
    ``0..n_clusters-1`` by decreasing size (ties by smallest member key), and
    ``-1`` is noise. ``silhouettes[i]`` is NaN for noise senders.
    ``centroids[c]`` is the unit-norm mean vector of cluster ``c``.
    """

    keys: tuple[str, ...]
    labels: np.ndarray
    silhouettes: np.ndarray
    centroids: np.ndarray
    method: str
    silhouette_method: str
    parameters: dict[str, object] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def noise(self) -> tuple[str, ...]:
        return tuple(key for key, label in zip(self.keys, self.labels) if label == NOISE)

    def clusters(self) -> dict[int, tuple[str, ...]]:
        """Map each cluster label to its members, sorted."""
        members: dict[int, list[str]] = {label: [] for label in range(self.n_clusters)}
        for key, label in zip(self.keys, self.labels.tolist()):
            if label != NOISE:
                members[label].append(key)
        return {label: tuple(sorted(keys)) for label, keys in members.items()}

    def cluster_silhouettes(self) -> dict[int, float]:
        """Return the mean silhouette of each cluster."""
        result: dict[int, float] = {}
        for label in range(self.n_clusters):
            values = self.silhouettes[self.labels == label]
            result[label] = float(np.mean(values)) if values.size else float("nan")
        return result


def validate_vectors(keys: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """Check keys and vectors agree and return the vectors as contiguous unit float32 rows.

    Raises ``InputError`` on a shape mismatch, duplicate keys, or a zero or
    non-finite vector, naming the first offending sender.
    """
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
        raise InputError(f"expected one vector row per sender: {len(keys)} senders, vectors of shape {matrix.shape}")
    if len(set(keys)) != len(keys):
        raise InputError("sender keys must be unique: remove the duplicates before clustering")
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = keys[int(np.flatnonzero(~finite)[0])]
        raise InputError(f"vector of sender {bad!r} has non-finite values: drop or re-embed it")
    norms = np.linalg.norm(matrix, axis=1)
    if (norms == 0).any():
        bad = keys[int(np.flatnonzero(norms == 0)[0])]
        raise InputError(f"vector of sender {bad!r} is all zeros: it has no direction to cluster on")
    # Re-normalise: callers promise unit vectors, but float32 round-off and
    # hand-made inputs drift, and inner products are cosines only on unit rows.
    return np.ascontiguousarray(matrix / norms[:, None], dtype=np.float32)


def knn_edges(vectors: np.ndarray, k: int, min_similarity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the symmetrised kNN graph as (source, target, cosine) arrays with source < target.

    Neighbours are exact inner products (faiss ``IndexFlatIP``). Negative
    similarities are clipped to 0 and edges below ``min_similarity`` dropped.
    """
    count = vectors.shape[0]
    neighbours = min(k + 1, count)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    similarities, ids = index.search(vectors, neighbours)
    sources = np.repeat(np.arange(count, dtype=np.int64), neighbours)
    targets = ids.reshape(-1).astype(np.int64)
    weights = np.clip(similarities.reshape(-1).astype(np.float64), 0.0, 1.0)
    keep = (targets >= 0) & (targets != sources) & (weights >= max(min_similarity, 0.0)) & (weights > 0.0)
    sources, targets, weights = sources[keep], targets[keep], weights[keep]

    # An edge found from both ends appears twice: keep one copy. Cosine is
    # symmetric, so both copies carry the same weight.
    low = np.minimum(sources, targets)
    high = np.maximum(sources, targets)
    _, first = np.unique(low * count + high, return_index=True)
    return low[first], high[first], weights[first]


def _relabel(raw_labels: np.ndarray, keys: Sequence[str], min_cluster_size: int) -> np.ndarray:
    """Number clusters by decreasing size (ties: smallest member key) and mark small ones as noise."""
    labels = np.full(raw_labels.shape[0], NOISE, dtype=np.int64)
    groups: dict[int, list[int]] = {}
    for position, raw in enumerate(raw_labels.tolist()):
        if raw != NOISE:
            groups.setdefault(raw, []).append(position)
    kept = [rows for rows in groups.values() if len(rows) >= min_cluster_size]
    kept.sort(key=lambda rows: (-len(rows), min(keys[row] for row in rows)))
    for label, rows in enumerate(kept):
        labels[rows] = label
    return labels


def centroids_of(vectors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Return the unit-norm mean vector of each cluster (rows in label order)."""
    sums = np.zeros((n_clusters, vectors.shape[1]), dtype=np.float64)
    mask = labels >= 0
    np.add.at(sums, labels[mask], vectors[mask].astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (sums / norms).astype(np.float32)


def silhouettes_of(
    vectors: np.ndarray, labels: np.ndarray, centroids: np.ndarray, exact_max: int
) -> tuple[np.ndarray, str]:
    """Return per-sender cosine silhouettes (NaN for noise) and the method used.

    Up to ``exact_max`` clustered senders the exact silhouette is computed
    (O(n^2) distances). Above it, the simplified silhouette replaces the mean
    distance to a cluster by the distance to its centroid: O(n * clusters),
    and usually a little higher than the exact value.
    """
    result = np.full(labels.shape[0], np.nan, dtype=np.float64)
    clustered = labels >= 0
    n_clusters = centroids.shape[0]
    if n_clusters < 2 or clustered.sum() <= n_clusters:
        # The silhouette is undefined for one cluster or all singletons.
        result[clustered] = 0.0
        return result, "undefined"
    if clustered.sum() <= exact_max:
        result[clustered] = silhouette_samples(vectors[clustered], labels[clustered], metric="cosine")
        return result, "exact"
    distances = 1.0 - vectors[clustered].astype(np.float64) @ centroids.T.astype(np.float64)
    own_labels = labels[clustered]
    rows = np.arange(own_labels.shape[0])
    own = distances[rows, own_labels]
    distances[rows, own_labels] = np.inf
    nearest_other = distances.min(axis=1)
    denominator = np.maximum(np.maximum(own, nearest_other), 1e-12)
    result[clustered] = (nearest_other - own) / denominator
    return result, "centroid"


class SenderClusterer:
    """Split senders into clusters of similar vectors.

    ``method``: ``leiden`` (default) or ``louvain`` on a kNN cosine graph
    whose edges below ``min_similarity`` are pruned, ``hdbscan`` on the unit
    vectors, or ``darkvec-paper`` (k=3 graph, Louvain, resolution 1, nothing
    pruned, every community kept) for comparison. Clusters smaller than
    ``min_cluster_size`` become noise (label ``-1``).

    >>> from darkvec_stream.clusters.synthetic import nested_blobs
    >>> blobs = nested_blobs(group_sizes=((40,), (30,)), background=0, seed=1)
    >>> result = SenderClusterer(seed=1).cluster(blobs.keys, blobs.vectors)
    >>> result.n_clusters
    2
    """

    def __init__(
        self,
        method: Method = "leiden",
        k: int = 10,
        resolution: float = 0.5,
        min_similarity: float = 0.5,
        min_cluster_size: int = 5,
        hdbscan_min_samples: int | None = None,
        silhouette_exact_max: int = 5000,
        seed: int = 0,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"clustering method {method!r} is not one of {', '.join(METHODS)}")
        if k < 1:
            raise ConfigError(f"clustering k must be at least 1, got {k}")
        if resolution <= 0:
            raise ConfigError(f"clustering resolution must be positive, got {resolution}")
        if not -1.0 <= min_similarity <= 1.0:
            raise ConfigError(f"clustering min_similarity must be a cosine in [-1, 1], got {min_similarity}")
        if min_cluster_size < 1:
            raise ConfigError(f"min_cluster_size must be at least 1, got {min_cluster_size}")
        if method == "darkvec-paper":
            k, resolution, min_similarity, min_cluster_size = PAPER_K, PAPER_RESOLUTION, 0.0, 1
        self.method = method
        self.k = k
        self.resolution = resolution
        self.min_similarity = min_similarity
        self.min_cluster_size = min_cluster_size
        self.hdbscan_min_samples = hdbscan_min_samples
        self.silhouette_exact_max = silhouette_exact_max
        self.seed = seed

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "method": self.method,
            "k": self.k,
            "resolution": self.resolution,
            "min_similarity": self.min_similarity,
            "min_cluster_size": self.min_cluster_size,
            "seed": self.seed,
        }

    def cluster(self, keys: Sequence[str], vectors: np.ndarray) -> Clustering:
        """Cluster the senders ``keys`` whose unit vectors are the rows of ``vectors``."""
        keys = tuple(keys)
        matrix = validate_vectors(keys, vectors)
        if len(keys) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Clustering(keys, empty, np.zeros(0), np.zeros((0, matrix.shape[1]), np.float32),
                              self.method, "undefined", self.parameters)
        raw_labels = self._raw_labels(matrix)
        labels = _relabel(raw_labels, keys, self.min_cluster_size)
        n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        centroids = centroids_of(matrix, labels, n_clusters)
        silhouettes, silhouette_method = silhouettes_of(matrix, labels, centroids, self.silhouette_exact_max)
        logger.debug("clustered %s senders into %s clusters (%s noise) with %s",
                     len(keys), n_clusters, int((labels == NOISE).sum()), self.method)
        return Clustering(keys, labels, silhouettes, centroids, self.method, silhouette_method, self.parameters)

    def _raw_labels(self, matrix: np.ndarray) -> np.ndarray:
        if self.method == "hdbscan":
            return self._hdbscan(matrix)
        sources, targets, weights = knn_edges(matrix, self.k, self.min_similarity)
        graph = igraph.Graph(n=matrix.shape[0], edges=np.column_stack([sources, targets]).tolist())
        graph.es["weight"] = weights.tolist()
        if self.method == "leiden":
            partition = leidenalg.find_partition(
                graph, leidenalg.RBConfigurationVertexPartition, weights="weight",
                resolution_parameter=self.resolution, seed=self.seed, n_iterations=-1,
            )
            return np.asarray(partition.membership, dtype=np.int64)
        return self._louvain(graph)

    def _louvain(self, graph: igraph.Graph) -> np.ndarray:
        # igraph draws its node order from a process-wide generator: swap in a
        # seeded one for this call so runs repeat, then put the default back.
        igraph.set_random_number_generator(random.Random(self.seed))
        try:
            communities = graph.community_multilevel(weights="weight", resolution=self.resolution)
        finally:
            igraph.set_random_number_generator(random)
        return np.asarray(communities.membership, dtype=np.int64)

    def _hdbscan(self, matrix: np.ndarray) -> np.ndarray:
        min_cluster_size = max(self.min_cluster_size, 2)
        if matrix.shape[0] < max(min_cluster_size, self.hdbscan_min_samples or 0):
            # Too few senders to form one cluster; HDBSCAN raises on this input.
            return np.full(matrix.shape[0], NOISE, dtype=np.int64)
        # Euclidean distance on unit vectors is a monotone function of the
        # cosine distance, and lets HDBSCAN use its tree-based neighbour search.
        model = HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=self.hdbscan_min_samples,
            metric="euclidean",
            copy=True,
        )
        return np.asarray(model.fit_predict(matrix.astype(np.float64)), dtype=np.int64)
