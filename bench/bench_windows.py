"""Benchmark of the windower: records per second through ``add`` and window close.

Generates synthetic telescope traffic (heavy-tailed senders, mostly TCP SYN
to a few popular ports, arrival shuffled within the lateness), then times
the windower in each service mode against plain Python baselines measured
in the same run. Also times the sender filter under a flood of distinct
senders and, with ``--profile``, prints where the time goes.

    .venv/bin/python -m bench.bench_windows            # 200,000 records
    .venv/bin/python -m bench.bench_windows --full     # 1,000,000 records
    .venv/bin/python -m bench.bench_windows --marx ../shared/data/real/marx-iptables-2013/marx.csv.gz

``--marx`` replays a real iptables log of unsolicited traffic (read in
place, never copied) and compares the sketch filter with exact counting.
"""

from __future__ import annotations

import argparse
import calendar
import cProfile
import csv
import gc
import gzip
import pstats
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
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


def make_windower(mode: str, min_packets: int, lateness_s: int = LATENESS_S) -> Windower:
    return Windower(
        window_s=WINDOW_S,
        lateness_s=lateness_s,
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
    """Group records by window index: one dict lookup and one append per record, the minimum a windower does."""
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


def bench_flood(distinct: int, hours: int = 8) -> None:
    """Spoofed flood: ``distinct`` new one-packet senders every hour of one day, default sketch."""
    sender_filter = SenderFilter()
    bytes_before = sender_filter.memory_bytes
    probe = [f"probe-{i}" for i in range(100_000)]
    one_packet = np.ones(distinct, dtype=np.int64)
    for hour in range(hours):
        senders = [f"spoof-{hour}-{i}" for i in range(distinct)]
        started = time.process_time()
        passed = int(sender_filter.update(hour * 3600 * S, senders, one_packet).sum())
        update_s = time.process_time() - started
        # Probing with estimate() leaves the sketch unchanged.
        false_positive = int((sender_filter.estimate(hour * 3600 * S, probe) >= sender_filter.min_packets).sum())
        print(
            f"flood hour {hour + 1}: {(hour + 1) * distinct:>10,} distinct senders today, update {update_s:5.2f} s, "
            f"{passed:,} flood senders passed, {false_positive / len(probe):.2%} of unseen senders would pass, "
            f"memory {sender_filter.memory_bytes / 2**20:.1f} MiB (was {bytes_before / 2**20:.1f})"
        )


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


def read_marx(path: Path) -> list[Record]:
    """Read the marx iptables CSV (``datetime,host,src,proto,type,spt,dpt``) in file order, as UTC."""
    protocols = {"TCP": PROTO_TCP, "UDP": PROTO_UDP, "ICMP": PROTO_ICMP}
    records: list[Record] = []
    with gzip.open(path, "rt", newline="") as stream:
        for row in csv.DictReader(stream):
            ts_s = calendar.timegm(time.strptime(row["datetime"], "%Y-%m-%d %H:%M:%S"))
            address = int(row["src"])
            src = f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
            port = int(row["dpt"]) if row["dpt"] else None
            records.append(Record(ts_ns=ts_s * S, src=src, dst=row["host"], dst_port=port, proto=protocols.get(row["proto"])))
    return records


def exact_passing(records: list[Record], windows: dict[int, list[Record]], min_packets: int, horizon_days: int) -> dict[int, set[str]]:
    """Return, per window, the senders an exact per-day counter lets through (same buckets as the sketch)."""
    day_ns = 86400 * S
    per_day: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    passing: dict[int, set[str]] = {}
    for index in sorted(windows):
        window_records = windows[index]
        day = index * WINDOW_S * S // day_ns
        for record in window_records:
            per_day[day][record.src] += record.packets
        senders = {record.src for record in window_records}
        passing[index] = {
            sender
            for sender in senders
            if sum(per_day[d].get(sender, 0) for d in range(day - horizon_days, day + 1)) >= min_packets
        }
    return passing


def bench_marx(path: Path, lateness_s: int) -> None:
    started = time.process_time()
    records = read_marx(path)
    print(f"marx: {len(records):,} records, {len({r.src for r in records}):,} senders, read in {time.process_time() - started:.1f} s")
    for mode in ("domain", "auto"):
        windower = make_windower(mode, 10, lateness_s)
        started = time.process_time()
        closed = windower.add_many(records) + windower.flush()
        seconds = time.process_time() - started
        words = sum(window.words for window in closed)
        sentences = sum(len(window.sentences) for window in closed)
        print(
            f"marx services={mode}, lateness {lateness_s} s: {len(closed):,} windows, {sentences:,} sentences, {words:,} words, "
            f"{windower.late_records:,} late records, {seconds:.2f} s ({len(records) / seconds / 1e6:.2f} M rec/s)"
        )

    windows: dict[int, list[Record]] = defaultdict(list)
    window_ns = WINDOW_S * S
    late = make_windower("single", 1, lateness_s)
    late.on_late = lambda record, position: None
    kept_records: list[Record] = []
    for record in records:
        before = late.late_records
        late.add(record)
        if late.late_records == before:
            kept_records.append(record)
            windows[record.ts_ns // window_ns].append(record)
    exact = exact_passing(kept_records, windows, 10, 30)
    for width in (1 << 18, 1 << 12, 1 << 8):
        windower = Windower(
            window_s=WINDOW_S, lateness_s=lateness_s, services=make_services("single"), sender_filter=SenderFilter(width=width)
        )
        closed = windower.add_many(kept_records) + windower.flush()
        false_negative = sum(len(exact[w.index] - set(w.activity)) for w in closed)
        false_positive = sum(len(set(w.activity) - exact[w.index]) for w in closed)
        truly_passing = sum(len(exact[w.index]) for w in closed)
        print(
            f"marx filter width {width:>6,} depth 4: {truly_passing:,} (sender, window) pairs pass exactly, "
            f"sketch adds {false_positive:,} false positives, misses {false_negative}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 records and a flood of 1,000,000 new senders an hour for 24 hours")
    parser.add_argument("--records", type=int, help="number of records (overrides --full)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the best is reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of Windower.add")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic traffic")
    parser.add_argument("--marx", type=Path, help="path of marx.csv.gz: replay real traffic and check the filter against exact counts")
    parser.add_argument("--lateness-s", type=int, default=LATENESS_S, help="lateness for --marx, in seconds")
    arguments = parser.parse_args()
    if arguments.marx:
        bench_marx(arguments.marx, arguments.lateness_s)
        return
    count = arguments.records or (1_000_000 if arguments.full else 200_000)
    records = generate_records(count, senders=100_000, hours=6, seed=arguments.seed)
    print(f"{count:,} records over 6 hourly windows, {len({r.src for r in records}):,} senders")
    bench_records(records, arguments.repeats)
    bench_memory(records)
    if arguments.full:
        bench_flood(1_000_000, hours=24)
    else:
        bench_flood(200_000, hours=4)
    if arguments.profile:
        profile(records)


if __name__ == "__main__":
    main()
