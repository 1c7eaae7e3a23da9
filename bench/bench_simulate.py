"""Generation speed of the simulator, per output format.

Usage: ``.venv/bin/python -m bench.bench_simulate`` (scale 0.1, one day) or
``--full`` (scale 1, one day of a /24, about 3.4 M records). Files go to a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from darkvec_stream.simulate import OUTPUT_FORMATS, Simulation, SimulationConfig, write_simulation


def measure(config: SimulationConfig, formats: tuple[str, ...], compress: bool) -> list[tuple[str, int, float, int]]:
    rows = []
    started = time.perf_counter()
    records = sum(len(batch) for batch in Simulation(config).batches())
    rows.append(("(generate only)", records, time.perf_counter() - started, 0))
    for format_name in formats:
        with tempfile.TemporaryDirectory() as directory:
            started = time.perf_counter()
            result = write_simulation(config, Path(directory), format_name, compress=compress)
            elapsed = time.perf_counter() - started
            size = sum(path.stat().st_size for path in result.traffic_files)
        rows.append((format_name + (".gz" if compress else ""), result.records, elapsed, size))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="scale 1 (default: scale 0.1)")
    parser.add_argument("--days", type=float, default=1.0, help="days to simulate (default: 1)")
    parser.add_argument("--gzip", action="store_true", help="also measure gzip-compressed output")
    args = parser.parse_args()
    config = SimulationConfig(days=args.days, scale=1.0 if args.full else 0.1, seed=1)
    print(f"python {platform.python_version()}, {platform.machine()}, scale {config.scale}, days {config.days}")
    print(f"{'format':<18}{'records':>10}{'seconds':>10}{'records/s':>12}{'MB':>9}{'vs generate':>13}")
    rows = measure(config, OUTPUT_FORMATS, compress=False)
    if args.gzip:
        rows += measure(config, ("record-csv", "pcap"), compress=True)[1:]
    generate_s = rows[0][2]
    for name, records, seconds, size in rows:
        print(f"{name:<18}{records:>10}{seconds:>10.2f}{records / seconds:>12,.0f}{size / 1e6:>9.1f}"
              f"{seconds / generate_s:>12.1f}x")


if __name__ == "__main__":
    main()
