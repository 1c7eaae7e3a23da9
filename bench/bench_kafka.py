"""Measure the Kafka stage against the embedded Tansu broker.

Group join time per consumer setting (fresh group, and after a member was
killed), replay produce rate and consume+decode rate per records-per-message
batch size, and the memory replay needs to sort a file in memory. Prints
Markdown tables. Run: ``.venv/bin/python -m bench.bench_kafka [--full]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from darkvec_stream.ingest import read_batches
from darkvec_stream.ingest.record import Record
from darkvec_stream.ingest.wire import write_file
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.replay import replay
from darkvec_stream.kafka.source import KafkaRecordSource
from darkvec_stream.kafka.testing import produce_values

NS = 1_000_000_000

# name -> RecordConsumer keyword arguments
JOIN_SETTINGS: dict[str, dict[str, Any]] = {
    "group, kafka-python defaults (45000/3000 ms)": {"session_timeout_ms": 45_000, "heartbeat_interval_ms": 3000},
    "group, 10000/3000 ms": {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 3000},
    "group, 6000/1000 ms (project default)": {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
    "group, 2000/500 ms": {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 300_000},
    "group, static membership, 6000/1000 ms": {
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "group_instance_id": "bench-static",
    },
    "manual assign() (no join)": {"assignment": "manual"},
}

_CRASHING_MEMBER = """
import sys, json, time
from darkvec_stream.kafka.consumer import RecordConsumer
settings = json.loads(sys.argv[3])
consumer = RecordConsumer(sys.argv[1], [sys.argv[2]], sys.argv[4], **settings).start()
while not consumer.poll_batch(200):
    pass
print("ready", flush=True)
time.sleep(600)
"""


def time_to_first_message(bootstrap_servers: str, topic: str, group: str, settings: dict[str, Any]) -> float:
    """Seconds from consumer start to the first message returned by a poll."""
    started = time.monotonic()
    with RecordConsumer(bootstrap_servers, [topic], group, **settings) as consumer:
        while not consumer.poll_batch(timeout_ms=100):
            if time.monotonic() - started > 300:
                raise TimeoutError(f"no message within 300 s for group {group}")
        return time.monotonic() - started


def join_after_crash(bootstrap_servers: str, topic: str, settings: dict[str, Any]) -> float:
    """Start a member in a child process, SIGKILL it, then time a new member's first message."""
    import json

    group = f"bench-crash-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_MEMBER, bootstrap_servers, topic, json.dumps(settings), group],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise RuntimeError("crashing member did not start")
    child.send_signal(signal.SIGKILL)
    child.wait()
    return time_to_first_message(bootstrap_servers, topic, group, settings)


def bench_joins(broker: EmbeddedBroker, full: bool) -> list[tuple[str, float, float | None]]:
    topic = f"bench-join-{uuid.uuid4().hex[:8]}"
    produce_values(broker.bootstrap_servers, topic, [b"x"] * 4, partition=None)
    rows = []
    for name, settings in JOIN_SETTINGS.items():
        fresh_s = time_to_first_message(broker.bootstrap_servers, topic, f"bench-{uuid.uuid4().hex[:8]}", settings)
        slow_default = settings.get("session_timeout_ms", 0) >= 45_000
        crash_s = None
        if full or not slow_default:
            crash_s = join_after_crash(broker.bootstrap_servers, topic, settings)
        rows.append((name, fresh_s, crash_s))
        print(f"  {name}: fresh {fresh_s:.2f} s, after crash {crash_s}", file=sys.stderr)
    return rows


def synthetic_file(directory: Path, count: int) -> Path:
    """Write a record-csv file of ``count`` records, 10 per second, from 5,000 senders."""
    records = [
        Record(
            ts_ns=(1_700_000_000 * NS) + number * NS // 10,
            src=f"198.{(number % 5000) // 250}.{(number % 250)}.{7 + number % 3}",
            dst=f"192.0.2.{number % 200}",
            src_port=40000 + number % 20000,
            dst_port=(23, 80, 443, 2323, 445)[number % 5],
            proto=6,
            length=60,
            tcp_flags=2,
            ttl=64,
            tcp_seq=number * 7919 % 2**32,
        )
        for number in range(count)
    ]
    path = directory / f"synthetic-{count}.csv"
    write_file(path, records)
    return path


def consume_rate(bootstrap_servers: str, topic: str, count: int) -> tuple[float, float]:
    """Records per wall second and per CPU second of this process for consume + decode."""
    consumer = RecordConsumer(bootstrap_servers, [topic], f"bench-{uuid.uuid4().hex[:8]}", assignment="manual")
    with consumer:
        source = KafkaRecordSource(consumer, "record-csv", poll_timeout_ms=200)
        started, started_cpu = time.monotonic(), time.process_time()
        decoded = 0
        while decoded < count:
            for _, records, _ in source.poll():
                decoded += len(records)
        return count / (time.monotonic() - started), count / (time.process_time() - started_cpu)


Throughput = tuple[int, float, float, float, float]


def bench_throughput(broker: EmbeddedBroker, path: Path, count: int, batch_sizes: list[int]) -> list[Throughput]:
    """Per batch size: replay and consume rates, per wall second and per CPU second of this process."""
    rows = []
    for batch_records in batch_sizes:
        topic = f"bench-replay-{batch_records}-{uuid.uuid4().hex[:6]}"
        started_cpu = time.process_time()
        summary = replay([path], topic, broker.bootstrap_servers, format="record-csv", batch_records=batch_records)
        produce_cpu_per_s = summary.records / (time.process_time() - started_cpu)
        produce_per_s = summary.records / summary.wall_s
        consume_per_s, consume_cpu_per_s = consume_rate(broker.bootstrap_servers, topic, count)
        rows.append((batch_records, produce_per_s, produce_cpu_per_s, consume_per_s, consume_cpu_per_s))
        print(f"  batch {batch_records}: replay {produce_per_s:.0f}/s, consume {consume_per_s:.0f}/s", file=sys.stderr)
    return rows


def bytes_per_record(path: Path) -> float:
    """Measure Python heap bytes per decoded Record kept in a list, as replay's in-memory sort keeps them."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept_records: list[Record] = []
    for records, _ in read_batches(path, "record-csv"):
        kept_records.extend(records)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(kept_records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="200,000 records and the slow default-settings crash case")
    parser.add_argument("--records", type=int, default=None, help="records per throughput run (default 20,000; 200,000 with --full)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = args.records or (200_000 if args.full else 20_000)

    load_1m = os.getloadavg()[0]
    print(
        f"# bench_kafka: {count} records, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load_1m:.1f} at start\n"
    )
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as directory:
        joins = bench_joins(broker, args.full)
        path = synthetic_file(Path(directory), count)
        throughput = bench_throughput(broker, path, count, [1, 100, 1000, 10_000])
        per_record_bytes = bytes_per_record(path)

    print("| consumer setting | first message, new group (s) | first message after a killed member (s) |")
    print("|---|---|---|")
    for name, fresh_s, crash_s in joins:
        crash = f"{crash_s:.2f}" if crash_s is not None else "not run (use --full)"
        print(f"| {name} | {fresh_s:.2f} | {crash} |")
    print()
    base = throughput[0]
    print(
        "| records per message | replay (records/wall s) | x vs 1 | replay (records/CPU s) "
        "| consume + decode (records/wall s) | x vs 1 | consume + decode (records/CPU s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for batch_records, produce_per_s, produce_cpu_per_s, consume_per_s, consume_cpu_per_s in throughput:
        print(
            f"| {batch_records} | {produce_per_s:,.0f} | {produce_per_s / base[1]:.1f} | {produce_cpu_per_s:,.0f} "
            f"| {consume_per_s:,.0f} | {consume_per_s / base[3]:.1f} | {consume_cpu_per_s:,.0f} |"
        )
    print(f"\nin-memory sort cost: {per_record_bytes:.0f} bytes of Python heap per record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
