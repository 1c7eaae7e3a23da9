"""Benchmark building the analyst report: time per part, page size and peak memory.

Run ``python -m bench.bench_report`` for the small default (2,000 senders in
20 clusters over 48 windows) or ``--full`` to add 50,000 senders in 200
clusters over 168 windows. The state is synthetic but goes through the real
``SenderHistory``, ``SenderEmbedding`` and ``ClusterJournal``. Each row runs
in a child process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NS_PER_HOUR = 3_600_000_000_000
SIZES = {"small": (2_000, 20, 48), "full": (50_000, 200, 168)}
VARIANTS = {
    "defaults (pca, 200 senders per cluster)": {},
    "50 senders per cluster": {"senders_per_cluster": 50},
    "t-SNE map of 2,000 senders": {"map_method": "tsne", "map_senders": 2000},
}


def synthetic_state(senders: int, clusters: int, windows: int, seed: int = 0) -> Any:
    """Build a state whose clusters differ in ports and in the windows they are active in."""
    from darkvec_stream.embedding import SenderEmbedding
    from darkvec_stream.query.history import SenderHistory
    from darkvec_stream.query.journal import ClusterJournal
    from darkvec_stream.query.state import AnalystState, SenderLabelView
    from darkvec_stream.windows.model import ClosedWindow, Sentence, SenderActivity

    rng = np.random.default_rng(seed)
    names = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(senders)]
    cluster_of = rng.integers(0, clusters, size=senders)
    ports = {c: rng.choice(65536, size=4, replace=False).tolist() for c in range(clusters)}
    duty = rng.uniform(0.1, 0.9, size=clusters)
    history = SenderHistory(max_windows=windows)
    for index in range(windows):
        active = rng.random(senders) < duty[cluster_of]
        activity = {}
        for row in np.flatnonzero(active):
            packets = int(rng.integers(1, 50))
            port = ports[int(cluster_of[row])][int(rng.integers(0, 4))]
            start_ns = index * NS_PER_HOUR
            activity[names[row]] = SenderActivity(packets, start_ns, start_ns + 1, {port: packets}, {"svc"}, 0)
        history.observe(ClosedWindow(index, index * NS_PER_HOUR, (index + 1) * NS_PER_HOUR, (), activity, 0, 0, 0))

    # One training window in which each cluster's members share sentences.
    sentences = []
    for c in range(clusters):
        members = [names[row] for row in np.flatnonzero(cluster_of == c)]
        for _ in range(3):
            sentences.append(Sentence(f"c{c}", tuple(rng.permutation(members).tolist())))
    embedding = SenderEmbedding(vector_size=16, context=5, epochs_per_window=1, seed=1, expiry_s=10**9)
    embedding.update(ClosedWindow(windows, windows * NS_PER_HOUR, (windows + 1) * NS_PER_HOUR,
                                  tuple(sentences), {}, 0, 0, 0))

    journal = ClusterJournal()
    journal.sender_cluster = {name: (f"C{int(c):06d}", round(float(rng.uniform(-0.2, 1)), 6))
                              for name, c in zip(names, cluster_of)}
    labels = {name: SenderLabelView(f"group{int(c) % 7}", 1.0, "list") for name, c in
              zip(names[::10], cluster_of[::10])}
    return AnalystState(embedding, history, journal, labels, windows_closed=windows)


def run_one(size: str, options: dict[str, Any]) -> dict[str, Any]:
    from darkvec_stream.labels.knn import KnnLabeller
    from darkvec_stream.report import ReportOptions, build_report, write_report

    senders, clusters, windows = SIZES[size]
    started = time.monotonic()
    state = synthetic_state(senders, clusters, windows)
    state_s = time.monotonic() - started
    rss_state_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.monotonic(), time.process_time()
    content = build_report(state, KnnLabeller(), ReportOptions(**options))
    with tempfile.TemporaryDirectory() as directory:
        html_path, _ = write_report(content, Path(directory))
        page_bytes = html_path.stat().st_size
    return {
        "state_s": state_s,
        "report_s": time.monotonic() - started,
        "report_cpu_s": time.process_time() - cpu_started,
        "parts_s": content.timings_s,
        "page_bytes": page_bytes,
        "rss_state_mb": rss_state_mb,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also run 50,000 senders in 200 clusters")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, options = json.loads(args.one)
        print(json.dumps(run_one(size, options)))
        return

    print("| size | variant | report s (CPU s) | clusters table s | evaluation s | cluster plots s | map s "
          "| timeline s | CPU vs defaults | page MB | peak RSS MB (state alone) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in (["small", "full"] if args.full else ["small"]):
        senders, clusters, windows = SIZES[size]
        baseline = None
        for name, options in VARIANTS.items():
            completed = subprocess.run([sys.executable, "-m", "bench.bench_report", "--one", json.dumps([size, options])],
                                       capture_output=True, text=True, check=True)
            row = json.loads(completed.stdout.strip().splitlines()[-1])
            baseline = baseline or row["report_cpu_s"]
            parts = row["parts_s"]
            print(f"| {senders:,} senders, {clusters} clusters, {windows} windows | {name} | {row['report_s']:.1f} ({row['report_cpu_s']:.1f}) "
                  f"| {parts['cluster_table']:.2f} | {parts['evaluation']:.2f} | {parts['cluster_plots']:.1f} "
                  f"| {parts['embedding_map']:.1f} | {parts['alert_timeline']:.2f} | {row['report_cpu_s'] / baseline:.2f}x "
                  f"| {row['page_bytes'] / 1e6:.1f} | {row['rss_peak_mb']:.0f} ({row['rss_state_mb']:.0f}) |",
                  flush=True)


if __name__ == "__main__":
    main()
