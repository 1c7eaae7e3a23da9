"""End-to-end ingest benchmark: decode plus window from file, and the whole pipeline.

Run ``.venv/bin/python -m bench.bench_pipeline`` (add ``--marx PATH`` for the
real log). Each case runs in a fresh subprocess so its peak RSS is its own.
Decode plus window is the part the 1 M records/s goal is about; the whole
pipeline adds Word2Vec, FAISS, labels and clusters per closed window.
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

from darkvec_stream.ingest import read_batches
from darkvec_stream.windows import SenderFilter, Windower, make_services


def decode_and_window(path: str, fmt: str, preset: str | None, lateness_s: int) -> dict[str, float]:
    options = {"preset": preset} if preset else {}
    windower = Windower(window_s=3600, lateness_s=lateness_s, services=make_services("domain"),
                        sender_filter=SenderFilter())
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    records = rejects = windows = 0
    for batch, rejected in read_batches(path, fmt, **options):
        records += len(batch)
        rejects += len(rejected)
        windows += len(windower.add_many(batch))
    windows += len(windower.flush())
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
    return {
        "records": records, "rejects": rejects, "windows": windows, "late": windower.late_records,
        "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "records_per_cpu_s": round(records / cpu), "records_per_wall_s": round(records / wall),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def whole_pipeline(path: str, fmt: str, preset: str | None, lateness_s: int, out: str) -> dict[str, float]:
    command = [
        str(Path(sys.executable).with_name("darkvec-stream")), "--log-level", "WARNING",
        "--set", f"windows.lateness_s={lateness_s}", "--set", "metrics.enabled=false",
        "run", "--input", path, "--format", fmt, "--output", out,
    ]
    if preset:
        command += ["--preset", preset]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = int(completed.stdout.split("records read ")[1].split(",")[0])
    return {
        "records": records, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "records_per_wall_s": round(records / wall), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def generate_record_csv(path: Path, records: int) -> None:
    from darkvec_stream.simulate import SimulationConfig, write_simulation

    # Scale chosen so that one simulated day holds about the requested count.
    config = SimulationConfig(days=1.0, scale=records / 3_320_000, seed=11)
    result = write_simulation(config, path, split="none")
    print(f"generated {result.records:,} records in {result.traffic_files[0]}", file=sys.stderr)


def _child(case: str, *args: str) -> dict[str, float]:
    completed = subprocess.run([sys.executable, "-m", "bench.bench_pipeline", "--child", case, *args],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--marx", default=None, help="path of marx.csv.gz (the real log); skipped if absent")
    parser.add_argument("--records", type=int, default=1_000_000, help="size of the simulated record-csv file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, path, fmt, preset, lateness = args.child[0], *args.child[1:5]
        if case == "window":
            print(json.dumps(decode_and_window(path, fmt, preset or None, int(lateness))))
        return

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        sim = Path(scratch) / "sim"
        generate_record_csv(sim, args.records)
        traffic = str(next(sim.glob("traffic*")))
        rows.append(("simulated record-csv", "decode+window", _child("window", traffic, "record-csv", "", "300")))
        rows.append(("simulated record-csv", "whole pipeline",
                     whole_pipeline(traffic, "record-csv", None, 300, str(Path(scratch) / "out1"))))
        if args.marx and Path(args.marx).exists():
            rows.append(("marx (csv preset)", "decode+window", _child("window", args.marx, "csv", "marx-iptables", "1800")))
            rows.append(("marx (csv preset)", "whole pipeline",
                         whole_pipeline(args.marx, "csv", "marx-iptables", 1800, str(Path(scratch) / "out2"))))
    print("| input | stage | records | records/s (wall) | records/s (CPU) | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for name, stage, row in rows:
        per_cpu = row.get("records_per_cpu_s") or round(row["records"] / max(row["cpu_s"], 1e-9))
        print(f"| {name} | {stage} | {row['records']:,} | {row['records_per_wall_s']:,} | {per_cpu:,} | {row['peak_rss_mib']} |")


if __name__ == "__main__":
    main()
