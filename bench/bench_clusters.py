"""Benchmark clustering and tracking time against live senders, ARI per method, and drift calibration.

Run ``python -m bench.bench_clusters`` for the small default (10 k senders),
``--full`` to add 100 k, ``--huge`` to add 1 M (Leiden and Louvain only).
Each timing row runs in a child process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import time
from typing import Any

import faiss
import numpy as np

from darkvec_stream.clusters.clustering import SenderClusterer, ivf_neighbours, sum_silhouettes
from darkvec_stream.clusters.drift import SERIES, calibrate_page_hinkley, count_adwin_alarms
from darkvec_stream.clusters.monitor import ClusterMonitor
from darkvec_stream.clusters.quality import adjusted_rand, merges_and_splits
from darkvec_stream.clusters.profile import profile_clusters
from darkvec_stream.clusters.synthetic import NestedBlobs, StreamGroup, nested_blobs, synthetic_stream, unit_rows
from darkvec_stream.clusters.tracking import ClusterTracker

HDBSCAN_MAX_SENDERS = 20_000
# The clusterer's default ``large_min_senders``: below it the bench also
# forces the large path, to compare it with the exact one on the same data.
LARGE_MIN_SENDERS = 100_000


def scaled_groups(senders: int) -> tuple[tuple[int, ...], ...]:
    """Nested group sizes summing to about 85 % of ``senders`` (the rest is background)."""
    base = ((1500,), (120, 90, 60), (80, 40), (60,), (50, 50), (40,), (30, 30, 30), (25,), (20,), (20,))
    scale = 0.85 * senders / sum(sum(sizes) for sizes in base)
    return tuple(tuple(max(5, int(size * scale)) for size in sizes) for sizes in base)


def ari_table(seeds: int) -> None:
    print("## ARI against true sub-groups (3,000 senders, 10 groups / 16 sub-groups)")
    print("| geometry | method | ARI (mean over seeds) | clusters | merged / split groups (seed 0) |")
    print("|---|---|---|---|---|")
    geometries = {"easy (member 0.45, sub 0.7, bg 300)": (0.45, 0.7, 300),
                  "hard (member 0.8, sub 0.8, bg 1000)": (0.8, 0.8, 1000),
                  "harder (member 1.0, sub 0.8, bg 1000)": (1.0, 0.8, 1000)}
    methods = {"darkvec-paper": {"method": "darkvec-paper"}, "louvain (k10, r0.5, sim0.5)": {"method": "louvain"},
               "hdbscan": {"method": "hdbscan"}, "leiden without split": {"split_min_gain": None},
               "leiden default (with split)": {}}
    for name, (member, sub, background) in geometries.items():
        data = [nested_blobs(member_spread=member, subgroup_spread=sub, background=background, seed=s)
                for s in range(seeds)]
        for method, options in methods.items():
            scores, counts = [], []
            for seed, blobs in enumerate(data):
                result = SenderClusterer(seed=seed, **options).cluster(blobs.keys, blobs.vectors)
                scores.append(adjusted_rand(blobs.subgroups, result.labels))
                counts.append(result.n_clusters)
                if seed == 0:
                    merged, split = merges_and_splits(blobs.subgroups, result.labels)
            print(f"| {name} | {method} | {np.mean(scores):.3f} | {np.mean(counts):.0f} | "
                  f"{len(merged)} merged, {len(split)} split {sorted(split)[:3]} |")


def next_run(blobs: NestedBlobs, seed: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Return the senders and vectors of the next clustering run: 5 % of senders replaced, all moved a little."""
    rng = np.random.default_rng(seed)
    count = len(blobs.keys)
    keep = rng.random(count) >= 0.05
    keys = tuple(key if kept else f"new-{i}" for i, (key, kept) in enumerate(zip(blobs.keys, keep)))
    vectors = unit_rows(blobs.vectors + rng.normal(0.0, 0.1 / np.sqrt(blobs.vectors.shape[1]), blobs.vectors.shape))
    return keys, vectors


def peak_rss_mb() -> float:
    """Return this process's peak resident set in MB.

    ``VmHWM`` starts afresh at ``exec``, whereas Linux carries ``ru_maxrss``
    over from the parent process across ``fork`` and ``exec``.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timing_rows(senders: int, methods: list[str]) -> None:
    """Print one timing row per method for ``senders`` live senders (run in a fresh process for its peak RSS)."""
    blobs = nested_blobs(group_sizes=scaled_groups(senders), background=int(senders * 0.15), seed=0)
    next_keys, next_vectors = next_run(blobs, 1)
    for name in methods:
        method, _, path = name.partition("/")
        options: dict[str, Any] = {"method": method}
        if path == "large":
            options["large_min_senders"] = 1
        start = time.perf_counter()
        result = SenderClusterer(**options).cluster(blobs.keys, blobs.vectors)
        cluster_s = time.perf_counter() - start
        ari = adjusted_rand(blobs.subgroups, result.labels)

        start = time.perf_counter()
        profile_clusters(result)
        profile_s = time.perf_counter() - start

        second = SenderClusterer(**options).cluster(next_keys, next_vectors)
        tracker = ClusterTracker()
        tracker.update(result.clusters(), 0)
        start = time.perf_counter()
        tracked = tracker.update(second.clusters(), 1)
        track_s = time.perf_counter() - start
        kept_ids = len(tracked.of_kind("survived")) + len(tracked.of_kind("grew")) + len(tracked.of_kind("shrank"))

        steps = result.timings_s
        rss_mb = peak_rss_mb()
        print(f"| {len(blobs.keys):,} | {name} | {steps.get('graph', 0):.1f} | {steps['communities']:.1f} | "
              f"{steps['silhouettes']:.1f} ({result.silhouette_method}) | {cluster_s:.1f} | {ari:.3f} | "
              f"{result.n_clusters} | {profile_s:.1f} | {track_s:.2f} ({kept_ids} kept) | {rss_mb:,.0f} |", flush=True)


def timing(sizes: list[int]) -> None:
    """Run ``timing_rows`` per size in a child process, so each peak RSS is that size's own."""
    print("## Clustering and tracking time per run")
    print("| senders | method / path | kNN graph s | communities s | silhouettes s | cluster s | ARI sub-groups "
          "| clusters | profiles s | track s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for senders in sizes:
        methods = ["leiden", "louvain"]
        if senders <= HDBSCAN_MAX_SENDERS:
            methods.append("hdbscan")
        if senders < LARGE_MIN_SENDERS:
            methods += ["leiden/large", "louvain/large"]
        for method in methods:
            # One child per row: a process's peak RSS never goes down.
            subprocess.run([sys.executable, "-m", "bench.bench_clusters", "--timing-row", str(senders), method],
                           check=True)


def knn_recall(senders: int, nprobe_values: list[int], queries: int = 2000) -> None:
    """Compare the IVF kNN graph with the exact one on a sample of senders."""
    blobs = nested_blobs(group_sizes=scaled_groups(senders), background=int(senders * 0.15), seed=0)
    vectors = blobs.vectors
    sample = np.random.default_rng(0).choice(len(vectors), size=min(queries, len(vectors)), replace=False)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    exact_similarity, exact_ids = index.search(vectors[sample], 11)
    subgroups = np.asarray(blobs.subgroups)
    print(f"## IVF kNN graph against exact, {len(vectors):,} senders, {len(sample)} sampled senders, k = 10")
    print("| nprobe | search s | recall of exact edges >= 0.5 | mean neighbour cosine, IVF / exact "
          "| same sub-group neighbours, IVF / exact |")
    print("|---|---|---|---|---|")
    for nprobe in nprobe_values:
        start = time.perf_counter()
        similarity, ids = ivf_neighbours(vectors, 11, nprobe)
        search_s = time.perf_counter() - start
        found, expected = 0, 0
        for row, sender in enumerate(sample.tolist()):
            strong = set(exact_ids[row][exact_similarity[row] >= 0.5].tolist()) - {sender}
            expected += len(strong)
            found += len(strong & set(ids[sender].tolist()))
        same_ivf = (subgroups[ids[sample, 1:]] == subgroups[sample, None]).mean()
        same_exact = (subgroups[exact_ids[:, 1:]] == subgroups[sample, None]).mean()
        ratio = similarity[sample, 1:].mean() / exact_similarity[:, 1:].mean()
        print(f"| {nprobe} | {search_s:.1f} | {found / max(expected, 1):.3f} | {ratio:.3f} | "
              f"{same_ivf:.3f} / {same_exact:.3f} |", flush=True)


def silhouette_error(senders: int) -> None:
    """Compare the cluster-sum silhouette and the older centroid shortcut with scikit-learn's exact one."""
    blobs = nested_blobs(group_sizes=scaled_groups(senders), background=int(senders * 0.15), seed=0)
    result = SenderClusterer(silhouette_exact_max=10**9).cluster(blobs.keys, blobs.vectors)
    clustered = result.labels >= 0
    vectors, labels = blobs.vectors[clustered], result.labels[clustered]
    exact = result.silhouettes[clustered]
    start = time.perf_counter()
    summed = sum_silhouettes(vectors, labels, result.n_clusters)
    sum_s = time.perf_counter() - start
    centroid = centroid_silhouettes(vectors, labels, result.centroids)
    print(f"## Silhouette against scikit-learn's exact one, {int(clustered.sum()):,} clustered senders, "
          f"{result.n_clusters} clusters")
    print("| method | s | max abs error | mean abs error | max error of a cluster mean |")
    print("|---|---|---|---|---|")
    print(f"| scikit-learn exact | {result.timings_s['silhouettes']:.1f} | 0 | 0 | 0 |")
    for name, values, seconds in (("cluster sums", summed, f"{sum_s:.2f}"), ("centroid (before)", centroid, "")):
        error = np.abs(values - exact)
        means = [abs(values[labels == c].mean() - exact[labels == c].mean()) for c in range(result.n_clusters)]
        print(f"| {name} | {seconds} | {error.max():.2e} | {error.mean():.2e} | {max(means):.2e} |", flush=True)


def centroid_silhouettes(vectors: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return the simplified silhouette (distance to centroids) that ``silhouettes_of`` used above 5,000 senders."""
    distances = 1.0 - vectors.astype(np.float64) @ centroids.T.astype(np.float64)
    rows = np.arange(labels.shape[0])
    own = distances[rows, labels]
    distances[rows, labels] = np.inf
    nearest_other = distances.min(axis=1)
    return (nearest_other - own) / np.maximum(np.maximum(own, nearest_other), 1e-12)


def calibrate(clusters: int, windows: int) -> None:
    """Collect drift series from stable synthetic clusters and calibrate the detectors on them."""
    groups = tuple(StreamGroup(f"g{i}", 15 + (i * 7) % 60, (1000 + i, 2000 + i * 3 % 50)) for i in range(clusters))
    monitor = ClusterMonitor()
    for item in synthetic_stream(groups, windows=windows, background=100, seed=21):
        monitor.update(item.window, item.keys, item.vectors, item.labels)
    stable = {name: [list(monitor.drift.series(cid)[name]) for cid in monitor.drift.cluster_ids()] for name in SERIES}
    print(f"## Detector calibration on {len(monitor.drift.cluster_ids())} stable clusters x {windows} windows")
    print("| series | Page-Hinkley alarms per threshold | calibrated threshold | ADWIN alarms at 0.002 / 1e-5 |")
    print("|---|---|---|---|")
    for name in SERIES:
        series = [[v for v in values if math.isfinite(v)] for values in stable[name]]
        if not any(series):
            print(f"| {name} | no data | | |")
            continue
        threshold, alarms = calibrate_page_hinkley(series)
        adwin = f"{count_adwin_alarms(series, 0.002)} / {count_adwin_alarms(series, 1e-5)}"
        print(f"| {name} | {alarms} | {threshold:.3g} | {adwin} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="add the 100 k sender run")
    parser.add_argument("--huge", action="store_true", help="add the 1 M sender run (Leiden and Louvain)")
    parser.add_argument("--timing-only", action="store_true", help="skip the ARI table and the calibration")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per ARI cell (default: 3)")
    parser.add_argument("--calibrate-clusters", type=int, default=200, help="stable clusters to calibrate on")
    parser.add_argument("--timing-row", nargs=2, metavar=("SENDERS", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timing_row:
        timing_rows(int(args.timing_row[0]), [args.timing_row[1]])
        return
    if not args.timing_only:
        ari_table(args.seeds)
        calibrate(args.calibrate_clusters, 48)
    silhouette_error(10_000)
    sizes = [10_000]
    if args.full:
        sizes.append(100_000)
    if args.huge:
        sizes.append(1_000_000)
    knn_recall(sizes[-1], [8, 16, 32])
    timing(sizes)


if __name__ == "__main__":
    main()
