"""Renderings per second for each alert format, and dispatcher plus file-sink throughput.

Run ``python -m bench.bench_alerts`` for a quick run (2,000 alerts) or add
``--full`` for 20,000 alerts. Times are wall-clock medians of ``--repeat``
runs on one core, measured in one process so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from darkvec_stream.alerts import AlertDispatcher, FileSink
from darkvec_stream.alerts.examples import EXAMPLE_CONTEXT, new_cluster_example
from darkvec_stream.alerts.formats import FORMATS, render
from darkvec_stream.alerts.model import Alert

_HOUR_NS = 3600 * 1_000_000_000


def make_alerts(count: int) -> list[Alert]:
    """Return ``count`` distinct alerts shaped like the documentation example."""
    base = new_cluster_example()
    return [
        replace(
            base,
            alert_id=f"dvs-bench-{index:08d}",
            cluster_id=f"C{index:06d}",
            time_ns=base.time_ns + index * _HOUR_NS,
        )
        for index in range(count)
    ]


def time_rendering(alerts: list[Alert], format_name: str, repeat: int) -> float:
    """Return the median renderings per second of one format."""
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        for alert in alerts:
            render(alert, format_name, EXAMPLE_CONTEXT)
        rates.append(len(alerts) / (time.perf_counter() - started))
    return statistics.median(rates)


def time_dispatch_to_file(alerts: list[Alert], repeat: int) -> float:
    """Return the median alerts per second through dedup, rate limits and a JSON-lines file."""
    rates = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as directory:
            sink = FileSink(Path(directory) / "alerts.jsonl", context=EXAMPLE_CONTEXT)
            dispatcher = AlertDispatcher([sink])
            started = time.perf_counter()
            report = dispatcher.dispatch(alerts)
            dispatcher.flush()
            rates.append(len(alerts) / (time.perf_counter() - started))
            # Alerts are an hour apart with distinct clusters: none may be suppressed.
            if len(report.emitted) != len(alerts):
                raise RuntimeError(f"{len(report.suppressed)} alerts suppressed in the benchmark")
            dispatcher.close()
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    """Print a markdown table of renderings per second per format."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="render 20,000 alerts instead of 2,000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    alerts = make_alerts(20_000 if args.full else 2_000)

    print(f"alerts: {len(alerts)}, repeat: {args.repeat}, python {platform.python_version()}")
    rates = {name: time_rendering(alerts, name, args.repeat) for name in FORMATS}
    fastest = max(rates.values())
    print("| format | renderings/s | µs per alert | fastest / this |")
    print("|---|---:|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} | {fastest / rate:.1f} |")
    dispatch_rate = time_dispatch_to_file(alerts, args.repeat)
    print(f"| dispatch + jsonl file sink (fsync once) | {dispatch_rate:,.0f} | "
          f"{1e6 / dispatch_rate:.1f} | {fastest / dispatch_rate:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
