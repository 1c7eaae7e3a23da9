"""Benchmark clustering and tracking time against live senders, ARI per method, and drift calibration.

Run ``python -m bench.bench_clusters`` for the small default (10 k senders),
``--full`` to add 100 k, ``--huge`` to add 1 M (Leiden and Louvain only).
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np

from darkvec_stream.clusters.clustering import SenderClusterer
from darkvec_stream.clusters.drift import SERIES, calibrate_page_hinkley, count_adwin_alarms
from darkvec_stream.clusters.monitor import ClusterMonitor
from darkvec_stream.clusters.quality import adjusted_rand, merges_and_splits
from darkvec_stream.clusters.synthetic import StreamGroup, nested_blobs, synthetic_stream
from darkvec_stream.clusters.tracking import ClusterTracker

HDBSCAN_MAX_SENDERS = 20_000


def scaled_groups(senders: int) -> tuple[tuple[int, ...], ...]:
    """Nested group sizes summing to about 85 % of ``senders`` (the rest is background)."""
    unit = senders / 3000
    base = ((1500,), (120, 90, 60), (80, 40), (60,), (50, 50), (40,), (30, 30, 30), (25,), (20,), (20,))
    return tuple(tuple(max(5, int(size * unit * 0.85 * 3000 / 2540)) for size in sizes) for sizes in base)


def ari_table(seeds: int) -> None:
    print("## ARI against true sub-groups (3,000 senders, 10 groups / 16 sub-groups)")
    print("| geometry | method | ARI (mean over seeds) | clusters | merged / split groups (seed 0) |")
    print("|---|---|---|---|---|")
    geometries = {"easy (member 0.45, sub 0.7, bg 300)": (0.45, 0.7, 300),
                  "hard (member 0.8, sub 0.8, bg 1000)": (0.8, 0.8, 1000),
                  "harder (member 1.0, sub 0.8, bg 1000)": (1.0, 0.8, 1000)}
    methods = {"darkvec-paper": {"method": "darkvec-paper"}, "louvain (k10, r0.5, sim0.5)": {"method": "louvain"},
               "hdbscan": {"method": "hdbscan"}, "leiden default": {}}
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


def timing(sizes: list[int]) -> None:
    print("## Clustering and tracking time per run")
    print("| senders | method | cluster s | silhouette | track s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for senders in sizes:
        blobs = nested_blobs(group_sizes=scaled_groups(senders), background=int(senders * 0.15), seed=0)
        for method in ("leiden", "louvain", "hdbscan"):
            if method == "hdbscan" and senders > HDBSCAN_MAX_SENDERS:
                print(f"| {len(blobs.keys)} | hdbscan | skipped (over {HDBSCAN_MAX_SENDERS} senders) | | | |")
                continue
            start = time.perf_counter()
            result = SenderClusterer(method=method).cluster(blobs.keys, blobs.vectors)
            cluster_s = time.perf_counter() - start
            tracker = ClusterTracker()
            tracker.update(result.clusters(), 0)
            start = time.perf_counter()
            tracker.update(result.clusters(), 1)
            track_s = time.perf_counter() - start
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {len(blobs.keys)} | {method} | {cluster_s:.2f} | {result.silhouette_method} | "
                  f"{track_s:.3f} | {rss_mb:.0f} |", flush=True)


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
    parser.add_argument("--seeds", type=int, default=3, help="seeds per ARI cell (default: 3)")
    parser.add_argument("--calibrate-clusters", type=int, default=200, help="stable clusters to calibrate on")
    args = parser.parse_args()
    ari_table(args.seeds)
    calibrate(args.calibrate_clusters, 48)
    sizes = [10_000]
    if args.full:
        sizes.append(100_000)
    if args.huge:
        sizes.append(1_000_000)
    timing(sizes)


if __name__ == "__main__":
    main()
