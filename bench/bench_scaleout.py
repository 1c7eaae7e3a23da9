"""Scale-out throughput: records per second per window worker (1 vs 2 instances), trainer seconds per window.

Simulated telescope traffic is partitioned by service into a 4-partition
topic on an embedded broker on 127.0.0.1, then windowed by one worker
process and, in the same run, by two worker processes sharing the
partitions. Each worker reports the records it read and the seconds
between its first and last message. Finally one ``darkvec-stream
trainer`` assembles the windows and its log gives seconds per window.

    .venv/bin/python -m bench.bench_scaleout            # 1 hour at scale 1 (/24), 60 s windows
    .venv/bin/python -m bench.bench_scaleout --full     # 6 hours at scale 4 (about a /22), 300 s windows
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import yaml

from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.deadletter import JsonlDeadLetter
from darkvec_stream.ingest.record import Origin
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.scaleout.lifecycle import StopRequest
from darkvec_stream.scaleout.router import routed_messages
from darkvec_stream.scaleout.routing import ServiceRouter
from darkvec_stream.scaleout.worker import WindowWorker
from darkvec_stream.simulate.config import SimulationConfig
from darkvec_stream.simulate.engine import Simulation
from darkvec_stream.simulate.writers import encode_batch
from darkvec_stream.windows import DomainServices

PARTITIONS = 4
CLI = str(Path(sys.executable).with_name("darkvec-stream"))


def produce(bootstrap: str, topic: str, hours: float, scale: float) -> int:
    """Simulate and send traffic partitioned by service; return the record count."""
    from kafka import KafkaProducer

    run = Simulation(SimulationConfig(days=hours / 24, scale=scale, seed=5))
    router = ServiceRouter(DomainServices(), PARTITIONS)
    decoder = get_decoder("record-csv")
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1, max_request_size=2_000_000)
    producer.partitions_for(topic)
    records = 0
    for number, batch in enumerate(run.batches()):
        lines = encode_batch(batch, "record-csv").rstrip(b"\n").split(b"\n")
        for first in range(0, len(lines), 1000):
            decoded, _ = decoder.decode_message(b"\n".join(lines[first:first + 1000]), Origin("raw", 0, 0))
            records += len(decoded)
            for partition, payload in routed_messages(f"raw:0:{number}:{first}", router.split(decoded), 900_000):
                producer.send(topic, value=payload, partition=partition)
    producer.flush()
    producer.close()
    return records


class _TimedWorker(WindowWorker):
    first_s: float | None = None
    last_s: float = 0.0

    def handle(self, topic, partition, offset, value):  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        self.first_s = self.first_s or now
        closed = super().handle(topic, partition, offset, value)
        self.last_s = time.perf_counter()
        return closed


def _worker(bootstrap: str, topic: str, sentences: str, group: str, window_s: int, out: str, queue) -> None:  # type: ignore[no-untyped-def]
    worker = _TimedWorker(
        bootstrap, records_topic=topic, sentences_topic=sentences, group_id=group, services=DomainServices,
        dead_letter=JsonlDeadLetter(Path(out) / f"dead-{uuid.uuid4().hex[:6]}.jsonl"),
        window_s=window_s, lateness_s=5, max_future_s=10**9, max_poll_records=2000,
        consumer_options={"session_timeout_ms": 2000, "heartbeat_interval_ms": 500},
    )
    worker.run(StopRequest(), exit_when_idle_s=4, flush_at_exit=True)
    busy_s = worker.last_s - (worker.first_s or worker.last_s)
    queue.put((worker.summary.records_read, busy_s))


def run_workers(bootstrap: str, topic: str, count: int, window_s: int, out: str) -> tuple[str, list[tuple[int, float]]]:
    sentences = f"sentences-{uuid.uuid4().hex[:8]}"
    group = f"bench-{uuid.uuid4().hex[:8]}"
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_worker, args=(bootstrap, topic, sentences, group, window_s, out, queue))
                 for _ in range(count)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=900) for _ in processes]
    for process in processes:
        process.join()
    return sentences, results


def run_trainer(bootstrap: str, topic: str, sentences: str, window_s: int, out: Path) -> tuple[int, float]:
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump({
        "windows": {"window_s": window_s, "lateness_s": 5},
        "services": {"mode": "domain"},
        "embedding": {"workers": 1},
        "metrics": {"enabled": False},
        "kafka": {"bootstrap_servers": bootstrap},
    }))
    argv = [CLI, "--config", str(config), "trainer", "--records-topic", topic, "--sentences-topic", sentences,
            "--output", str(out / "trainer"), "--exit-at-end", "--group-id", f"t-{uuid.uuid4().hex[:6]}"]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-3000:])
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
              for line in completed.stderr.splitlines() if "assembled window" in line]
    windows = len(stamps)
    return windows, (stamps[-1] - stamps[0]) / max(1, windows - 1) if windows > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="6 hours at scale 4 with 300 s windows")
    args = parser.parse_args()
    hours, scale, window_s = (6.0, 4.0, 300) if args.full else (1.0, 1.0, 60)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        topic = f"by-service-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        records = produce(broker.bootstrap_servers, topic, hours, scale)
        print(f"input: {records} records ({hours:g} h at scale {scale:g}), produced in "
              f"{time.perf_counter() - started:.1f} s; windows of {window_s} s")
        rates = {}
        for count in (1, 2):
            sentences, results = run_workers(broker.bootstrap_servers, topic, count, window_s, scratch)
            per_instance = [read / busy if busy > 0 else float("nan") for read, busy in results]
            total = sum(read for read, _ in results) / max(busy for _, busy in results)
            rates[count] = total
            print(f"{count} worker(s): records/s per instance " + ", ".join(f"{rate:,.0f}" for rate in per_instance)
                  + f"; together {total:,.0f} records/s")
            if count == 1:
                first_sentences = sentences
        print(f"ratio 2 workers / 1 worker (together): {rates[2] / rates[1]:.2f}")
        windows, per_window_s = run_trainer(broker.bootstrap_servers, topic, first_sentences, window_s, Path(scratch))
        print(f"trainer: {windows} windows, {per_window_s:.3f} s per window (assembly, merge, model, labels, "
              f"clusters, checkpoint)")


if __name__ == "__main__":
    main()
