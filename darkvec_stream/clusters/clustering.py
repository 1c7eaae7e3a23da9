"""Cluster sender vectors: a pruned kNN similarity graph split by Leiden or Louvain, or HDBSCAN.

The input is sender keys with L2-normalised vectors; the output is one
cluster label per sender (``-1`` for noise), per-sender cosine silhouettes
and cluster centroids. It does not decide which senders are clustered or
when, and it keeps no state between runs (tracking does that).

From ``large_min_senders`` senders on, the kNN graph comes from an IVF index
instead of an exact search, and Leiden runs in igraph's C implementation
instead of ``leidenalg``. Below that size, results are those of the exact path.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

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

# IVF layout for the approximate kNN graph: about 4 * sqrt(n) inverted lists,
# k-means trained on at most this many points per list (faiss's default of 256
# makes training cost more than the search at 1 M senders).
IVF_LISTS_PER_SQRT = 4
IVF_TRAIN_POINTS_PER_LIST = 64
# Ten k-means rounds instead of faiss's 25: at 100 k senders the recall of the
# graph edges did not change and training took a third of the time.
IVF_TRAIN_ITERATIONS = 10
# Rows of the sender x cluster similarity matrix computed at once for the
# silhouette, so its memory stays near 64 MB whatever the number of senders.
SILHOUETTE_BLOCK_CELLS = 8_000_000


@dataclass(frozen=True, slots=True)
class Clustering:
    """One clustering run over a set of senders.

    ``labels[i]`` is the cluster of ``keys[i]``: clusters are numbered
    ``0..n_clusters-1`` by decreasing size (ties by smallest member key), and
    ``-1`` is noise. ``silhouettes[i]`` is NaN for noise senders.
    ``centroids[c]`` is the unit-norm mean vector of cluster ``c``.
    ``timings_s`` holds the seconds spent per step (``graph``, ``communities``,
    ``silhouettes``) for metrics and benchmarks.
    """

    keys: tuple[str, ...]
    labels: np.ndarray
    silhouettes: np.ndarray
    centroids: np.ndarray
    method: str
    silhouette_method: str
    parameters: dict[str, object] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

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
        clustered = self.labels >= 0
        labels = self.labels[clustered]
        counts = np.bincount(labels, minlength=self.n_clusters)
        sums = np.bincount(labels, weights=self.silhouettes[clustered], minlength=self.n_clusters)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        return {label: float(mean) if counts[label] else float("nan") for label, mean in enumerate(means.tolist())}


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


def exact_neighbours(vectors: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (similarities, ids) of the ``neighbours`` nearest rows of every row, self included.

    Exact inner products (faiss ``IndexFlatIP``): O(n^2) work.
    """
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    similarities, ids = index.search(vectors, neighbours)
    return similarities, ids


def ivf_neighbours(
    vectors: np.ndarray, neighbours: int, nprobe: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return approximate (similarities, ids) of the ``neighbours`` nearest rows of every row.

    An ``IndexIVFFlat`` with about ``4 * sqrt(n)`` lists, of which ``nprobe``
    are searched per row: O(n * nprobe * sqrt(n) / 4) work. A missed
    neighbour is replaced by the next one found, and ids of ``-1`` pad rows
    whose probed lists hold too few vectors.
    """
    count, dimension = vectors.shape
    lists = max(1, min(count // IVF_TRAIN_POINTS_PER_LIST, int(IVF_LISTS_PER_SQRT * np.sqrt(count))))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
    index.cp.niter = IVF_TRAIN_ITERATIONS
    index.cp.seed = seed
    index.train(vectors)
    index.add(vectors)
    index.nprobe = min(nprobe, lists)
    similarities, ids = index.search(vectors, neighbours)
    return similarities, ids


def knn_edges(
    vectors: np.ndarray, k: int, min_similarity: float, exact_max: int | None = None, nprobe: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the symmetrised kNN graph as (source, target, cosine) arrays with source < target.

    Up to ``exact_max`` senders (always when it is None) neighbours are exact
    inner products; above it they come from ``ivf_neighbours`` with
    ``nprobe``. Negative similarities are clipped to 0 and edges below
    ``min_similarity`` dropped.
    """
    count = vectors.shape[0]
    neighbours = min(k + 1, count)
    if exact_max is None or count <= exact_max:
        similarities, ids = exact_neighbours(vectors, neighbours)
    else:
        similarities, ids = ivf_neighbours(vectors, neighbours, nprobe, seed)
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

    Up to ``exact_max`` clustered senders, scikit-learn's pairwise silhouette
    (method ``exact``, O(n^2) distances). Above it, the same silhouette from
    cluster vector sums (method ``cluster-sums``, see ``sum_silhouettes``).
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
    result[clustered] = sum_silhouettes(vectors[clustered], labels[clustered], n_clusters)
    return result, "cluster-sums"


def sum_silhouettes(vectors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Return the exact cosine silhouette of unit rows in O(n * clusters * dimension).

    The mean cosine distance from ``x`` to the members of a cluster is
    ``1 - x . sum / size``, because the distance is linear in the other
    vector; for ``x``'s own cluster, ``x`` itself (distance ``1 - x . x``) is
    left out. So no pairwise distance is needed. Members of one-member
    clusters score 0, as in scikit-learn. ``labels`` must be ``0..n_clusters-1``.
    """
    matrix = vectors.astype(np.float64)
    sizes = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    sums = np.zeros((n_clusters, matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, matrix)
    result = np.zeros(matrix.shape[0], dtype=np.float64)
    block = max(1, SILHOUETTE_BLOCK_CELLS // max(n_clusters, 1))
    for start in range(0, matrix.shape[0], block):
        stop = min(start + block, matrix.shape[0])
        result[start:stop] = _silhouette_block(matrix[start:stop], labels[start:stop], sums, sizes)
    return result


def _silhouette_block(rows: np.ndarray, labels: np.ndarray, sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    dots = rows @ sums.T
    positions = np.arange(rows.shape[0])
    own_size = sizes[labels]
    self_dot = np.einsum("ij,ij->i", rows, rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Sum of distances to the other members: (size - 1) - (x . sum - x . x).
        own = ((own_size - 1.0) - (dots[positions, labels] - self_dot)) / (own_size - 1.0)
        mean_distances = 1.0 - dots / sizes[None, :]
    mean_distances[positions, labels] = np.inf
    nearest_other = mean_distances.min(axis=1)
    # Round-off can push a mean distance of near-duplicates just below 0.
    own = np.maximum(own, 0.0)
    nearest_other = np.maximum(nearest_other, 0.0)
    denominator = np.maximum(own, nearest_other)
    with np.errstate(invalid="ignore", divide="ignore"):
        silhouettes = (nearest_other - own) / denominator
    silhouettes[(own_size <= 1) | (denominator == 0)] = 0.0
    return silhouettes


# Subgraphs of at least this many senders are split with igraph's Leiden
# even below large_min_senders: leidenalg took minutes on the 50 k-sender
# subgraph of a 100 k-sender run, igraph seconds.
SPLIT_IGRAPH_MIN_SENDERS = 10_000

# Rows times clusters per block when scoring a split: about 128 MiB per
# float64 temporary, whatever the cluster or population size.
SPLIT_BLOCK_CELLS = 1 << 24


def _mean_silhouette(rows: np.ndarray, labels: np.ndarray, sums: np.ndarray, sizes: np.ndarray) -> float:
    """Mean of ``_silhouette_block`` over ``rows``, computed in blocks to bound memory."""
    step = max(1, SPLIT_BLOCK_CELLS // max(1, sums.shape[0]))
    total = 0.0
    for start in range(0, rows.shape[0], step):
        total += float(_silhouette_block(rows[start:start + step], labels[start:start + step], sums, sizes).sum())
    return total / rows.shape[0]


class _ClusterSums:
    """Vector sums and sizes of the clusters of a partition, to score candidate splits by silhouette."""

    def __init__(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        self.matrix = matrix.astype(np.float64)
        count = int(labels.max()) + 1
        self.sizes = np.bincount(labels, minlength=count).astype(np.float64)
        self.sums = np.zeros((count, matrix.shape[1]), dtype=np.float64)
        np.add.at(self.sums, labels, self.matrix)

    def mean_silhouette(self, members: np.ndarray, member_labels: np.ndarray) -> float:
        return _mean_silhouette(self.matrix[members], member_labels, self.sums, self.sizes)

    def _split_sums(self, members: np.ndarray, label: int, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part_count = int(parts.max()) + 1
        part_sums = np.zeros((part_count, self.sums.shape[1]), dtype=np.float64)
        np.add.at(part_sums, parts, self.matrix[members])
        part_sizes = np.bincount(parts, minlength=part_count).astype(np.float64)
        sums = np.concatenate([self.sums, part_sums[1:]])
        sizes = np.concatenate([self.sizes, part_sizes[1:]])
        sums[label], sizes[label] = part_sums[0], part_sizes[0]
        return sums, sizes

    def _part_labels(self, label: int, parts: np.ndarray) -> np.ndarray:
        # Part 0 keeps the cluster's label; the others get new labels at the end.
        return np.where(parts == 0, label, self.sizes.shape[0] + parts - 1)

    def mean_silhouette_if_split(self, members: np.ndarray, label: int, parts: np.ndarray) -> float:
        sums, sizes = self._split_sums(members, label, parts)
        return _mean_silhouette(self.matrix[members], self._part_labels(label, parts), sums, sizes)

    def split(self, members: np.ndarray, label: int, parts: np.ndarray) -> np.ndarray:
        """Apply the split and return the members' new labels."""
        new_labels = self._part_labels(label, parts)
        self.sums, self.sizes = self._split_sums(members, label, parts)
        return new_labels


class SenderClusterer:
    """Split senders into clusters of similar vectors.

    ``method``: ``leiden`` (default) or ``louvain`` on a kNN cosine graph
    whose edges below ``min_similarity`` are pruned, ``hdbscan`` on the unit
    vectors, or ``darkvec-paper`` (k=3 graph, Louvain, resolution 1, nothing
    pruned, every community kept) for comparison. Clusters smaller than
    ``min_cluster_size`` become noise (label ``-1``).

    After the first partition, ``leiden`` and ``louvain`` re-partition each
    cluster's subgraph at ``split_resolution`` and keep the split when the
    members' mean silhouette rises by at least ``split_min_gain`` (None turns
    this off), up to ``split_max_depth`` levels: see ``_split_clusters``.

    From ``large_min_senders`` senders on, graph methods search the kNN
    graph with an IVF index probing ``ivf_nprobe`` lists, and Leiden runs in
    igraph's C implementation: both cost a fraction of the exact path at
    1 M senders, with a measured recall and ARI in ``docs/benchmarks/clusters.md``.

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
        large_min_senders: int = 100_000,
        ivf_nprobe: int = 16,
        split_min_gain: float | None = 0.05,
        split_resolution: float = 1.0,
        split_max_depth: int = 2,
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
        if split_min_gain is not None and not -2.0 <= split_min_gain <= 2.0:
            raise ConfigError(f"clustering split_min_gain must be a silhouette change in [-2, 2] or None, "
                              f"got {split_min_gain}")
        if split_resolution <= 0:
            raise ConfigError(f"clustering split_resolution must be positive, got {split_resolution}")
        if split_max_depth < 1:
            raise ConfigError(f"clustering split_max_depth must be at least 1, got {split_max_depth}")
        if large_min_senders < 1:
            raise ConfigError(f"clustering large_min_senders must be at least 1, got {large_min_senders}")
        if ivf_nprobe < 1:
            raise ConfigError(f"clustering ivf_nprobe must be at least 1, got {ivf_nprobe}")
        if method == "darkvec-paper":
            k, resolution, min_similarity, min_cluster_size = PAPER_K, PAPER_RESOLUTION, 0.0, 1
        self.method = method
        self.k = k
        self.resolution = resolution
        self.min_similarity = min_similarity
        self.min_cluster_size = min_cluster_size
        self.hdbscan_min_samples = hdbscan_min_samples
        self.silhouette_exact_max = silhouette_exact_max
        self.large_min_senders = large_min_senders
        self.ivf_nprobe = ivf_nprobe
        self.split_min_gain = split_min_gain
        self.split_resolution = split_resolution
        self.split_max_depth = split_max_depth
        self.seed = seed

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "method": self.method,
            "k": self.k,
            "resolution": self.resolution,
            "min_similarity": self.min_similarity,
            "min_cluster_size": self.min_cluster_size,
            "large_min_senders": self.large_min_senders,
            "ivf_nprobe": self.ivf_nprobe,
            "split_min_gain": self.split_min_gain,
            "split_resolution": self.split_resolution,
            "split_max_depth": self.split_max_depth,
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
        timings_s: dict[str, float] = {}
        raw_labels = self._raw_labels(matrix, timings_s)

        started = time.perf_counter()
        labels = _relabel(raw_labels, keys, self.min_cluster_size)
        n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        centroids = centroids_of(matrix, labels, n_clusters)
        silhouettes, silhouette_method = silhouettes_of(matrix, labels, centroids, self.silhouette_exact_max)
        timings_s["silhouettes"] = time.perf_counter() - started
        logger.debug("clustered %s senders into %s clusters (%s noise) with %s in %s",
                     len(keys), n_clusters, int((labels == NOISE).sum()), self.method, timings_s)
        return Clustering(keys, labels, silhouettes, centroids, self.method, silhouette_method, self.parameters,
                          timings_s)

    def _raw_labels(self, matrix: np.ndarray, timings_s: dict[str, float]) -> np.ndarray:
        started = time.perf_counter()
        if self.method == "hdbscan":
            labels = self._hdbscan(matrix)
            timings_s["communities"] = time.perf_counter() - started
            return labels
        graph = self._graph(matrix)
        timings_s["graph"] = time.perf_counter() - started

        started = time.perf_counter()
        labels = self._communities(graph, self.resolution)
        timings_s["communities"] = time.perf_counter() - started
        if self.split_min_gain is None or self.method == "darkvec-paper":
            return labels
        if matrix.shape[0] >= self.large_min_senders:
            # NOTE: the split re-partitions every cluster's subgraph, and on
            # a 1 M-sender run it had not finished after 25 CPU minutes, so
            # large runs keep the first partition.
            return labels

        started = time.perf_counter()
        labels = self._split_clusters(graph, matrix, labels)
        timings_s["split"] = time.perf_counter() - started
        return labels

    def _graph(self, matrix: np.ndarray) -> igraph.Graph:
        sources, targets, weights = knn_edges(matrix, self.k, self.min_similarity,
                                              exact_max=self.large_min_senders - 1, nprobe=self.ivf_nprobe,
                                              seed=self.seed)
        # igraph reads an (m, 2) integer array directly; a list of Python
        # pairs costs as much time and several times the memory.
        graph = igraph.Graph(n=matrix.shape[0], edges=np.column_stack([sources, targets]))
        graph.es["weight"] = weights.tolist()
        return graph

    def _communities(self, graph: igraph.Graph, resolution: float, large: bool | None = None) -> np.ndarray:
        # ``large`` is decided by the whole population: the split step passes
        # it for the subgraphs of a large run, which are smaller than the bound.
        if large is None:
            large = graph.vcount() >= self.large_min_senders
        if self.method == "leiden" and large:
            # Measured by bench/bench_clusters.py on a 2-core machine: leidenalg
            # took 43 s on 90 k senders where igraph's own Leiden (the same
            # modularity with resolution) took 4 s.
            return self._seeded(lambda: graph.community_leiden(
                objective_function="modularity", weights="weight", resolution=resolution, n_iterations=-1))
        if self.method == "leiden":
            partition = leidenalg.find_partition(
                graph, leidenalg.RBConfigurationVertexPartition, weights="weight",
                resolution_parameter=resolution, seed=self.seed, n_iterations=-1,
            )
            return np.asarray(partition.membership, dtype=np.int64)
        return self._seeded(lambda: graph.community_multilevel(weights="weight", resolution=resolution))

    def _split_clusters(self, graph: igraph.Graph, matrix: np.ndarray, raw_labels: np.ndarray) -> np.ndarray:
        """Split clusters whose members' mean silhouette rises when their own subgraph is partitioned again.

        Modularity at one resolution cannot both keep a large dense group
        whole and separate small groups, so at a resolution that keeps the
        large group, small groups with similar vectors merge. Each cluster's
        subgraph is partitioned again at ``split_resolution``, and the split
        is kept only when it raises the members' mean silhouette by
        ``split_min_gain``. That separates the small groups. A split of one
        dense group lowers the silhouette, because the halves are as close
        to each other as to their own members, so it is dropped.
        """
        labels = np.unique(raw_labels, return_inverse=True)[1].astype(np.int64)
        large = graph.vcount() >= self.large_min_senders
        state = _ClusterSums(matrix, labels)
        pending = [(int(label), 1) for label in np.argsort(-state.sizes, kind="stable")
                   if state.sizes[label] >= 2 * self.min_cluster_size]
        while pending:
            label, depth = pending.pop(0)
            members = np.flatnonzero(labels == label)
            subgraph = graph.induced_subgraph(members.tolist(), implementation="create_from_scratch")
            fast = large or subgraph.vcount() >= SPLIT_IGRAPH_MIN_SENDERS
            parts = np.unique(self._communities(subgraph, self.split_resolution, fast), return_inverse=True)[1]
            if parts.max() == 0:
                continue
            before = state.mean_silhouette(members, labels[members])
            after = state.mean_silhouette_if_split(members, label, parts)
            if after < before + self.split_min_gain:
                continue
            new_labels = state.split(members, label, parts)
            labels[members] = new_labels
            if depth < self.split_max_depth:
                pending.extend((int(new), depth + 1) for new in np.unique(new_labels)
                               if state.sizes[new] >= 2 * self.min_cluster_size)
        return labels

    def _seeded(self, detect: Callable[[], igraph.VertexClustering]) -> np.ndarray:
        # igraph draws its node order from a process-wide generator: swap in a
        # seeded one for this call so runs repeat, then put the default back.
        igraph.set_random_number_generator(random.Random(self.seed))
        try:
            communities = detect()
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
