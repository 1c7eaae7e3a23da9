"""Agreement between a clustering and a known truth, for tuning, tests and benchmarks.

Only scores; it does not cluster or load truth files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

from darkvec_stream.clusters.clustering import NOISE
from darkvec_stream.errors import InputError


def noise_as_singletons(labels: np.ndarray) -> np.ndarray:
    """Return labels where each noise sender (``-1``) is its own cluster.

    Scoring noise as one big cluster would reward a method for lumping
    unrelated senders together.
    """
    result = np.asarray(labels, dtype=np.int64).copy()
    noise = np.flatnonzero(result == NOISE)
    start = int(result.max()) + 1 if result.size else 0
    result[noise] = np.arange(start, start + noise.size)
    return result


def adjusted_rand(truth: Sequence[str], labels: np.ndarray) -> float:
    """Return the adjusted Rand index of ``labels`` against ``truth`` (noise scored as singletons)."""
    if len(truth) != len(labels):
        raise InputError(f"truth has {len(truth)} senders but the clustering has {len(labels)}")
    return float(adjusted_rand_score(list(truth), noise_as_singletons(labels)))


def merges_and_splits(
    truth: Sequence[str], labels: np.ndarray, min_share: float = 0.1
) -> tuple[dict[int, list[str]], dict[str, list[int]]]:
    """List the clusters that hold several true groups and the true groups spread over several clusters.

    A group counts in a cluster (and a cluster in a group) when it holds at
    least ``min_share`` of the other's members. Noise is ignored.
    """
    by_cluster: dict[int, Counter[str]] = defaultdict(Counter)
    group_sizes: Counter[str] = Counter(truth)
    for group, label in zip(truth, np.asarray(labels).tolist()):
        if label != NOISE:
            by_cluster[label][group] += 1
    merged: dict[int, list[str]] = {}
    split: dict[str, list[int]] = defaultdict(list)
    for label, counts in sorted(by_cluster.items()):
        size = sum(counts.values())
        main_groups = sorted(group for group, count in counts.items() if count >= min_share * size)
        if len(main_groups) > 1:
            merged[label] = main_groups
        for group, count in counts.items():
            if count >= min_share * group_sizes[group]:
                split[group].append(label)
    return merged, {group: labels for group, labels in sorted(split.items()) if len(labels) > 1}
