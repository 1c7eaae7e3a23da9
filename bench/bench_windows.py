"""Benchmark of the windower: records per second through ``add`` and window close.

Generates synthetic telescope traffic (heavy-tailed senders, mostly TCP SYN
to a few popular ports, arrival shuffled within the lateness), then times
the windower in each service mode against plain Python baselines measured
in the same run. Also times the sender filter under a flood of distinct
senders and, with ``--profile``, prints where the time goes.

    .venv/bin/python -m bench.bench_windows            # 200,000 records
    .venv/bin/python -m bench.bench_windows --full     # 1,000,000 records
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_SYN, Record
from darkvec_stream.windows import SenderFilter, Windower, make_services

S = 10**9
WINDOW_S = 3600
LATENESS_S = 300
POPULAR_PORTS = [23, 445, 22, 80, 8080, 2323, 5555, 3389, 443, 1433, 6379, 37215]


def generate_records(count: int, senders: int, hours: float, seed: int) -> list[Record]:
    """Return ``count`` records over ``hours`` hours, arrival shuffled within a minute."""
    rng = np.random.default_rng(seed)
    span_ns = int(hours * 3600 * S)
    ts_ns = np.sort(rng.integers(1_362_344_400 * S, 1_362_344_400 * S + span_ns, size=count))
    # Arrival jitter of up to 60 s, well inside the 300 s lateness.
    arrival = np.argsort(ts_ns + rng.integers(0, 60 * S, size=count), kind="stable")
    ts_ns = ts_ns[arrival]
    sender_ids = np.minimum(rng.zipf(1.3, size=count), senders) - 1
    sender_names = [f"203.0.{i // 256 % 256}.{i % 256}" if i < 65536 else f"198.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(senders)]
    kind = rng.random(count)
    popular = rng.integers(0, len(POPULAR_PORTS), size=count)
    random_port = rng.integers(1, 65536, size=count)
    destinations = [f"192.0.2.{i}" for i in range(256)]
    dst_ids = rng.integers(0, 256, size=count)
    records: list[Record] = []
    for i in range(count):
        dst = destinations[dst_ids[i]]
        if kind[i] < 0.70:
            port, proto = POPULAR_PORTS[popular[i]], PROTO_TCP
        elif kind[i] < 0.90:
            port, proto = int(random_port[i]), PROTO_TCP
        elif kind[i] < 0.97:
            port, proto = int(random_port[i]), PROTO_UDP
        else:
            port, proto = None, PROTO_ICMP
        is_syn = proto == PROTO_TCP
        mirai_seq = 0xC0000200 + int(dst_ids[i]) if kind[i] < 0.2 else int(random_port[i])
        records.append(
            Record(
                ts_ns=int(ts_ns[i]),
                src=sender_names[sender_ids[i]],
                dst=dst,
                src_port=40000,
                dst_port=port,
                proto=proto,
                length=60,
                tcp_flags=TCP_SYN if is_syn else None,
                ttl=64,
                tcp_seq=mirai_seq if is_syn else None,
            )
        )
    return records


def best_of(repeats: int, action: Callable[[], Any]) -> float:
    timings = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        action()
        timings.append(time.process_time() - started)
    return min(timings)


def make_windower(mode: str, min_packets: int) -> Windower:
    return Windower(
        window_s=WINDOW_S,
        lateness_s=LATENESS_S,
        services=make_services(mode),
        sender_filter=SenderFilter(min_packets=min_packets),
    )


def run_add(records: list[Record], mode: str, min_packets: int) -> int:
    windower = make_windower(mode, min_packets)
    add = windower.add
    windows = 0
    for record in records:
        windows += len(add(record))
    return windows + len(windower.flush())


def run_add_many(records: list[Record], mode: str, min_packets: int) -> int:
    windower = make_windower(mode, min_packets)
    return len(windower.add_many(records)) + len(windower.flush())


def run_add_positions(records: list[Record], batch: int) -> int:
    """Kafka-like input: messages of ``batch`` records with one offset each."""
    windower = make_windower("auto", 10)
    windows = 0
    for offset, start in enumerate(range(0, len(records), batch)):
        windows += len(windower.add_many(records[start : start + batch], ("telescope", 0, offset)))
    return windows + len(windower.flush())


def baseline_loop(records: list[Record]) -> None:
    for _ in records:
        pass


def baseline_group(records: list[Record]) -> None:
    """The least a windower must do: one dict lookup and one append per record."""
    groups: dict[int, list[Record]] = {}
    window_ns = WINDOW_S * S
    for record in records:
        index = record[0] // window_ns
        group = groups.get(index)
        if group is None:
            group = groups[index] = []
        group.append(record)


def report_rate(name: str, seconds: float, count: int, reference: float) -> None:
    print(f"{name:<44} {seconds:8.3f} s  {count / seconds / 1e6:6.2f} M rec/s  x{seconds / reference:5.1f} vs loop")


def bench_records(records: list[Record], repeats: int) -> None:
    count = len(records)
    loop_s = best_of(repeats, lambda: baseline_loop(records))
    report_rate("baseline: empty loop", loop_s, count, loop_s)
    report_rate("baseline: dict group-by window", best_of(repeats, lambda: baseline_group(records)), count, loop_s)
    for mode in ("single", "domain", "auto", "hybrid"):
        seconds = best_of(repeats, lambda: run_add(records, mode, 10))
        report_rate(f"Windower.add, services={mode}, filter 10", seconds, count, loop_s)
    report_rate("Windower.add, services=auto, no filter", best_of(repeats, lambda: run_add(records, "auto", 1)), count, loop_s)
    report_rate("Windower.add_many, services=auto, filter 10", best_of(repeats, lambda: run_add_many(records, "auto", 10)), count, loop_s)
    report_rate("add_many with offsets, 100 records/message", best_of(repeats, lambda: run_add_positions(records, 100)), count, loop_s)


def bench_flood(distinct: int) -> None:
    sender_filter = SenderFilter()
    senders = [f"spoof-{i}" for i in range(distinct)]
    packets = np.ones(distinct, dtype=np.int64)
    started = time.process_time()
    sender_filter.update(0, senders, packets)
    update_s = time.process_time() - started
    started = time.process_time()
    passed = int(sender_filter.update(3600 * S, senders, packets).sum())
    second_s = time.process_time() - started
    print(
        f"flood: {distinct:,} distinct senders, default sketch ({sender_filter.memory_bytes / 2**20:.1f} MiB): "
        f"update {update_s:.2f} s, again an hour later {second_s:.2f} s, "
        f"{passed:,} noise senders passed with 2 packets each"
    )
    noise = [f"noise-{i}" for i in range(100_000)]
    passed_noise = int(sender_filter.update(7200 * S, noise, np.ones(len(noise), dtype=np.int64)).sum())
    print(f"flood: afterwards {passed_noise:,} of 100,000 fresh one-packet senders passed (false positives)")


def bench_memory(records: list[Record]) -> None:
    tracemalloc.start()
    run_add(records, "auto", 10)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak traced memory while windowing {len(records):,} records: {peak_bytes / 2**20:.0f} MiB")


def profile(records: list[Record]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_add(records, "auto", 10)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 records and a 1,000,000-sender flood")
    parser.add_argument("--records", type=int, help="number of records (overrides --full)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the best is reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of Windower.add")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    count = arguments.records or (1_000_000 if arguments.full else 200_000)
    random.seed(arguments.seed)
    records = generate_records(count, senders=100_000, hours=6, seed=arguments.seed)
    print(f"{count:,} records over 6 hourly windows, {len({r.src for r in records}):,} senders")
    bench_records(records, arguments.repeats)
    bench_memory(records)
    bench_flood(1_000_000 if arguments.full else 200_000)
    if arguments.profile:
        profile(records)


if __name__ == "__main__":
    main()
