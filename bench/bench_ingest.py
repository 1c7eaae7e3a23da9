"""Decode speed of the ingest formats, from files, in records per second.

Runs each decoder over a whole file through ``read_batches`` and prints one
line per case; ``--profile`` adds the top functions by own time. Writes
generated inputs under a temporary directory and removes them afterwards.
Real captures are read in place and skipped when absent.

    .venv/bin/python -m bench.bench_ingest            # 200 k generated records
    .venv/bin/python -m bench.bench_ingest --full     # 1 M generated records
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from darkvec_stream.ingest import read_batches
from darkvec_stream.ingest.record import Record
from darkvec_stream.ingest.wire import write_file

REAL = Path("/work/shared/data/real")
CASES_REAL = [
    ("marx csv preset", REAL / "marx-iptables-2013" / "marx.csv.gz", "csv", {"preset": "marx-iptables"}),
    ("darkvec-csv", REAL / "darkvec-polito-sample" / "darknet01_20210501.csv.gz", "darkvec-csv", {}),
    ("greynoise pcap", REAL / "greynoise-noise-storm-pcap" / "brazil-storm-small-tcp-sample.pcap", "pcap", {}),
]


def generate_records(count: int, seed: int = 1) -> list[Record]:
    """Telescope-like records: 50 k senders, a handful of ports, SYN packets."""
    rng = random.Random(seed)
    senders = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
               for _ in range(50_000)]
    ports = [23, 80, 443, 445, 2323, 3389, 8080]
    return [
        Record(1_600_000_000_000_000_000 + index * 1_000_000, rng.choice(senders), f"192.0.2.{index % 256}",
               rng.randrange(1024, 65536), rng.choice(ports), 6, 60, 2, rng.randrange(30, 255),
               rng.randrange(2**32), 1, None)
        for index in range(count)
    ]


def write_goflow2(path: Path, records: list[Record]) -> None:
    with open(path, "wb") as handle:
        for record in records:
            handle.write(orjson.dumps({
                "type": "IPFIX", "time_received_ns": record.ts_ns, "time_flow_start_ns": record.ts_ns,
                "src_addr": record.src, "dst_addr": record.dst, "src_port": record.src_port,
                "dst_port": record.dst_port, "proto": "TCP", "packets": 1, "bytes": record.length,
                "tcp_flags": record.tcp_flags, "ip_ttl": record.ttl,
            }) + b"\n")


def measure(path: Path, format: str, options: dict[str, Any], repeats: int) -> tuple[int, float]:
    """Return records decoded and the best time of ``repeats`` runs, in seconds."""
    best_s = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(records) + len(rejects) for records, rejects in read_batches(path, format, **options))
        best_s = min(best_s, time.perf_counter() - start)
    return count, best_s


def profile(path: Path, format: str, options: dict[str, Any]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in read_batches(path, format, **options):
        pass
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="generate 1,000,000 records instead of 200,000")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the best time is reported")
    parser.add_argument("--profile", action="store_true", help="print where the time goes for each case")
    arguments = parser.parse_args()
    count = 1_000_000 if arguments.full else 200_000

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
        records = generate_records(count)
        wire_path = Path(directory) / "records.csv"
        write_file(wire_path, records)
        jsonl_path = Path(directory) / "goflow2.jsonl"
        write_goflow2(jsonl_path, records)
        cases = [
            ("record-csv columnar", wire_path, "record-csv", {}),
            ("record-csv line path", wire_path, "record-csv", {"columnar": False}),
            ("jsonl goflow2", jsonl_path, "jsonl", {"preset": "goflow2"}),
            *[case for case in CASES_REAL if case[1].exists()],
        ]
        print(f"{'case':24} {'records':>10} {'best s':>8} {'records/s':>12}")
        for name, path, format, options in cases:
            decoded, best_s = measure(path, format, options, arguments.repeats)
            print(f"{name:24} {decoded:>10,} {best_s:>8.3f} {decoded / best_s:>12,.0f}")
            if arguments.profile:
                profile(path, format, options)


if __name__ == "__main__":
    main()
