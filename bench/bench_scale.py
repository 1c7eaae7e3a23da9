"""Trainer saturation benchmark: the single-process pipeline at /24, /22 and /20.

Run ``.venv/bin/python -m bench.bench_scale`` (a /24 and a /22 for 3 hours of
event time) or add ``--full`` (/24, /22 and /20 for 6 hours, plus a one-day
sender census). Each telescope size runs in a fresh subprocess, so its peak
RSS is its own. The simulator models telescope size by its prefix: every
scanner covers the whole prefix, so packets grow with the address count and
one-off senders grow in number. The census counts the senders a steady state
would cluster; the report extrapolates per-window cost from it. It measures
nothing about Kafka (see ``bench.bench_kafka``) nor about several workers.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

PREFIXES = {24: "198.51.100.0/24", 22: "198.51.100.0/22", 20: "198.51.96.0/20"}
STAGES = ("mirai", "embedding", "index", "labels", "clustering", "alerts")
WINDOW_S = 3600
SEED = 5


class StageClock:
    """CPU and wall seconds per pipeline stage for the window being processed."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = defaultdict(float)
        self.wall_s: dict[str, float] = defaultdict(float)

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu_s[stage] += time.process_time() - cpu
                self.wall_s[stage] += time.perf_counter() - wall
        return timed

    def take(self) -> tuple[dict[str, float], dict[str, float]]:
        cpu = {stage: round(self.cpu_s.get(stage, 0.0), 3) for stage in STAGES}
        wall = {stage: round(self.wall_s.get(stage, 0.0), 3) for stage in STAGES}
        self.cpu_s.clear()
        self.wall_s.clear()
        return cpu, wall


def simulate(prefix_len: int, hours: float, directory: Path) -> dict[str, Any]:
    """Write one telescope size's traffic file; runs in its own process so its memory is not counted."""
    from darkvec_stream.simulate import SimulationConfig, write_simulation

    config = SimulationConfig(days=hours / 24, prefix=PREFIXES[prefix_len], seed=SEED)
    started = time.perf_counter()
    result = write_simulation(config, directory, split="none")
    return {"traffic": str(result.traffic_files[0]), "simulate_s": round(time.perf_counter() - started, 1)}


def build_pipeline(output_dir: Path, clock: StageClock) -> Any:
    """Build the pipeline with default settings and time each stage of ``process_window``."""
    import darkvec_stream.pipeline as pipeline_module
    from darkvec_stream.config import load_settings
    from darkvec_stream.metrics import PipelineMetrics
    from darkvec_stream.pipeline import Pipeline

    settings = load_settings(None, environ={}, overrides=[f"output.directory={output_dir}"])
    pipeline = Pipeline.create(settings, output_dir, PipelineMetrics())
    # The wrappers sit on this instance and on the module name that
    # process_window looks up, so the pipeline code itself runs unchanged.
    pipeline.mirai.observe = clock.wrap("mirai", pipeline.mirai.observe)
    pipeline.embedding.update = clock.wrap("embedding", pipeline.embedding.update)
    pipeline_module.apply_embedding_update = clock.wrap("index", pipeline_module.apply_embedding_update)
    pipeline._label = clock.wrap("labels", pipeline._label)
    pipeline._cluster = clock.wrap("clustering", pipeline._cluster)
    pipeline.dispatcher.dispatch = clock.wrap("alerts", pipeline.dispatcher.dispatch)
    return pipeline


def window_row(pipeline: Any, result: Any, clock: StageClock) -> dict[str, Any]:
    import psutil

    cpu, wall = clock.take()
    window = result.window
    clusters = result.clusters
    return {
        "index": window.index,
        "records": window.records,
        "senders_seen": window.senders_seen,
        "senders": len(window.activity),
        "words": window.words,
        "words_trained": result.embedding.words_trained,
        "vocabulary": len(pipeline.embedding),
        "index_vectors": len(pipeline.index),
        "clustered": 0 if clusters is None else len(clusters.clustering.keys),
        "clusters": 0 if clusters is None else clusters.clustering.n_clusters,
        "cpu_s": cpu,
        "wall_s": wall,
        "total_cpu_s": round(sum(cpu.values()), 3),
        "total_wall_s": round(result.seconds, 3),
        "rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1),
    }


def run_size(prefix_len: int, hours: float, traffic: Path, scratch: Path) -> dict[str, Any]:
    """Decode, window and train one simulated traffic file in this process."""
    from darkvec_stream.ingest import read_batches

    clock = StageClock()
    pipeline = build_pipeline(scratch / "out", clock)
    decode_cpu = window_cpu = 0.0
    records = 0
    rows: list[dict[str, Any]] = []
    batches = iter(read_batches(traffic, "record-csv"))
    while True:
        started = time.process_time()
        batch = next(batches, None)
        decode_cpu += time.process_time() - started
        if batch is None:
            break
        decoded, _ = batch
        records += len(decoded)
        started = time.process_time()
        closed = pipeline.windower.add_many(decoded)
        window_cpu += time.process_time() - started
        for window in closed:
            rows.append(window_row(pipeline, pipeline.process_window(window), clock))
            print(f"/{prefix_len} window {len(rows)}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    for window in pipeline.windower.flush():
        rows.append(window_row(pipeline, pipeline.process_window(window), clock))
    pipeline.close()
    return {
        "prefix_len": prefix_len, "hours": hours, "records": records, "decode_cpu_s": round(decode_cpu, 2), "window_cpu_s": round(window_cpu, 2),
        "records_per_cpu_s": round(records / max(decode_cpu + window_cpu, 1e-9)),
        "windows": rows,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def census(prefix_len: int, hours: float) -> dict[str, Any]:
    """Count, without the pipeline, the senders a steady state would hold.

    A sender counts once it has 10 packets within the census period. That is
    a lower bound on what the 30-day sender filter lets through.
    """
    from darkvec_stream.simulate import Simulation, SimulationConfig

    min_packets = 10
    config = SimulationConfig(days=hours / 24, prefix=PREFIXES[prefix_len], seed=SEED)
    packets: dict[int, int] = defaultdict(int)
    hourly: list[np.ndarray] = []
    started = time.perf_counter()
    for batch in Simulation(config).batches():
        senders, counts = np.unique(batch.src, return_counts=True)
        hourly.append(senders)
        for sender, count in zip(senders.tolist(), counts.tolist()):
            packets[sender] += count
    passing = {sender for sender, count in packets.items() if count >= min_packets}
    per_hour = [sum(1 for sender in senders.tolist() if sender in passing) for senders in hourly]
    return {
        "prefix_len": prefix_len, "hours": hours, "seconds": round(time.perf_counter() - started, 1),
        "senders": len(packets), "senders_passing": len(passing),
        "senders_passing_per_hour": round(float(np.mean(per_hour))),
    }


def fit_power(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares fit of seconds = a * driver ** b in log space; returns (a, b)."""
    usable = [(x, y) for x, y in points if x > 0 and y > 0]
    if len(usable) < 2:
        return (usable[0][1] / usable[0][0], 1.0) if usable else (0.0, 1.0)
    xs = np.log([x for x, _ in usable])
    ys = np.log([y for _, y in usable])
    slope, intercept = np.polyfit(xs, ys, 1)
    return math.exp(intercept), float(slope)


def _addresses(prefix_len: int) -> int:
    return 2 ** (32 - prefix_len)


def print_report(runs: list[dict[str, Any]], censuses: list[dict[str, Any]]) -> None:
    """Print the measured tables, the cost fits and the extrapolation, as Markdown."""
    print("### Decode and window, and memory\n")
    print("| telescope | event time h | records | decode+window records per CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for run in runs:
        print(f"| /{run['prefix_len']} | {run['hours']:g} | {run['records']:,} | {run['records_per_cpu_s']:,} "
              f"| {run['peak_rss_mib']:,} |")

    print("\n### Per closed window (CPU seconds per stage)\n")
    print("| telescope | window | records | senders | words | vocabulary | clustered | embedding | index "
          "| labels | clustering | total CPU s | total wall s | headroom (3600 / CPU s) | RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        for number, row in enumerate(run["windows"], start=1):
            cpu = row["cpu_s"]
            headroom = WINDOW_S / max(row["total_cpu_s"], 1e-9)
            print(f"| /{run['prefix_len']} | {number} | {row['records']:,} | {row['senders']:,} | {row['words']:,} "
                  f"| {row['vocabulary']:,} | {row['clustered']:,} | {cpu['embedding']:.2f} | {cpu['index']:.2f} "
                  f"| {cpu['labels']:.2f} | {cpu['clustering']:.2f} | {row['total_cpu_s']:.2f} "
                  f"| {row['total_wall_s']:.2f} | {headroom:,.0f} | {row.get('rss_mib', 0):,.0f} |")

    fits = _fits(runs)
    print("\n### Cost fits over every window above (CPU s = a * x^b)\n")
    print("| stage | x | a | b |")
    print("|---|---|---:|---:|")
    for stage, (driver, a, b) in fits.items():
        print(f"| {stage} | {driver} | {a:.3g} | {b:.2f} |")
    if censuses:
        _print_extrapolation(runs, censuses, fits)


# Stage -> (what its cost grows with, exponent or None to fit it). Word2Vec
# training is linear in the words trained, so its exponent is fixed at 1;
# the kNN graph and Leiden of clustering have no such simple law.
FIT_DRIVERS: dict[str, tuple[str, float | None]] = {
    "embedding": ("words_trained", 1.0), "index": ("senders", 1.0),
    "labels": ("senders", 1.0), "clustering": ("clustered", None),
}


def _fits(runs: list[dict[str, Any]]) -> dict[str, tuple[str, float, float]]:
    fits = {}
    for stage, (driver, exponent) in FIT_DRIVERS.items():
        points = [(row[driver], row["cpu_s"][stage]) for run in runs for row in run["windows"]]
        if exponent is None:
            a, b = fit_power(points)
        else:
            # Least squares through the origin of seconds against x ** exponent.
            xs = np.array([x for x, _ in points], dtype=float) ** exponent
            ys = np.array([y for _, y in points], dtype=float)
            a, b = float(xs @ ys / max(xs @ xs, 1e-12)), exponent
        fits[stage] = (driver, a, b)
    return fits


def _print_extrapolation(runs: list[dict[str, Any]], censuses: list[dict[str, Any]],
                         fits: dict[str, tuple[str, float, float]]) -> None:
    by_size = {run["prefix_len"]: run for run in runs}
    print("\n### Sender census (simulator only, no pipeline)\n")
    print("| telescope | census h | distinct senders | with >= 10 packets | of those, active per hour |")
    print("|---|---:|---:|---:|---:|")
    for census in censuses:
        print(f"| /{census['prefix_len']} | {census['hours']:g} | {census['senders']:,} | "
              f"{census['senders_passing']:,} | {census['senders_passing_per_hour']:,} |")

    # Per-hour words grow with the window's senders: scale the last measured
    # window of each size to the census's per-hour sender count.
    words_per_sender = {
        size: run["windows"][-1]["words_trained"] / max(run["windows"][-1]["senders"], 1) for size, run in by_size.items()
    }
    sizes = sorted(census["prefix_len"] for census in censuses)
    active_fit = fit_power([(_addresses(c["prefix_len"]), c["senders_passing"]) for c in censuses])
    hourly_fit = fit_power([(_addresses(c["prefix_len"]), c["senders_passing_per_hour"]) for c in censuses])
    words_fit = fit_power([(_addresses(size), words_per_sender[size]) for size in sizes if size in words_per_sender])
    print("\n### Steady state, one hourly window (EXTRAPOLATED from the fits; /18 and larger also from the census "
          "trend)\n")
    print("| telescope | senders per window | clustered senders (24 h) | words trained | embedding s | index s "
          "| labels s | clustering s | total s | headroom (3600 s / total) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for prefix_len in (24, 22, 20, 18, 16):
        addresses = _addresses(prefix_len)
        census = next((c for c in censuses if c["prefix_len"] == prefix_len), None)
        hourly = census["senders_passing_per_hour"] if census else hourly_fit[0] * addresses ** hourly_fit[1]
        active = census["senders_passing"] if census else active_fit[0] * addresses ** active_fit[1]
        per_sender = words_per_sender.get(prefix_len, words_fit[0] * addresses ** words_fit[1])
        drivers = {"words_trained": hourly * per_sender, "senders": hourly, "clustered": active}
        seconds = {stage: a * drivers[driver] ** b for stage, (driver, a, b) in fits.items()}
        total = sum(seconds.values())
        marker = "" if census else " (census extrapolated)"
        print(f"| /{prefix_len}{marker} | {hourly:,.0f} | {active:,.0f} | {drivers['words_trained']:,.0f} "
              f"| {seconds['embedding']:,.1f} | {seconds['index']:,.1f} | {seconds['labels']:,.1f} "
              f"| {seconds['clustering']:,.1f} | {total:,.1f} | {WINDOW_S / total:,.1f} |")


def _child(arguments: list[str]) -> dict[str, Any]:
    # Progress goes to this process's stderr; the result is the last stdout line.
    command = [sys.executable, "-m", "bench.bench_scale", "--child", *arguments]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_size(prefix_len: int, hours: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        simulated = _child(["simulate", str(prefix_len), str(hours), scratch])
        run = _child(["run", str(prefix_len), str(hours), scratch, simulated["traffic"]])
    return {**run, "simulate_s": simulated["simulate_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="/24, /22 and /20 for 6 hours, and the census")
    parser.add_argument("--hours", type=float, default=None, help="event time simulated per size [unit: hours]")
    parser.add_argument("--sizes", default=None, help="comma-separated prefix lengths, from 24, 22, 20")
    parser.add_argument("--census-hours", type=float, default=None,
                        help="length of the sender census per size [unit: hours]; 0 skips it")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results to this file")
    parser.add_argument("--report", type=Path, default=None,
                        help="print the report of a file written by --json, without measuring")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        print_report(saved["runs"], saved["census"])
        return
    if args.child:
        kind, prefix_len, hours = args.child[0], int(args.child[1]), float(args.child[2])
        if kind == "simulate":
            print(json.dumps(simulate(prefix_len, hours, Path(args.child[3]) / "sim")))
        elif kind == "run":
            print(json.dumps(run_size(prefix_len, hours, Path(args.child[4]), Path(args.child[3]))))
        else:
            print(json.dumps(census(prefix_len, hours)))
        return

    hours = 6.0 if args.full else 3.0
    if args.hours is not None:
        hours = args.hours
    sizes = [int(size) for size in (args.sizes or ("24,22,20" if args.full else "24,22")).split(",")]
    census_hours = 24.0 if args.full else 0.0
    if args.census_hours is not None:
        census_hours = args.census_hours
    runs = [measure_size(size, hours) for size in sizes]
    censuses = [_child(["census", str(size), str(census_hours)]) for size in sizes] if census_hours else []
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "census": censuses}, indent=1))
    print_report(runs, censuses)


if __name__ == "__main__":
    main()
