"""Memory and speed of the daemon under a spoofed-source flood of distinct one-packet senders.

Run ``python -m bench.bench_flood`` for a quick run (100,000 and 200,000
senders) or add ``--full`` for 100,000 and 1,000,000. Each size runs
``darkvec-stream run --input`` as a child process with production settings
(hourly windows, the default sender filter), the whole flood inside one
hour, while this process polls ``/healthz`` and samples the child's RSS.
Both sizes run in one invocation so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

NS_PER_S = 1_000_000_000
FLOOD_START_NS = 1_614_556_800 * NS_PER_S  # 2021-03-01T00:00:00Z
HEADER = "ts_ns,src,dst,src_port,dst_port,proto,length,tcp_flags,ttl,tcp_seq,packets,mirai\n"
ADDRESS_PATTERN = re.compile(r"metrics and health endpoint on http://([\d.]+):(\d+)/")
DAEMON = Path(sys.executable).with_name("darkvec-stream")


@dataclass(frozen=True)
class FloodResult:
    """Measurements of one flood run."""

    senders: int
    wall_s: float
    records_per_s: float
    ready_rss_bytes: int
    peak_rss_bytes: int
    healthz_answers: int
    healthz_failures: int
    healthz_max_latency_s: float
    vocabulary_senders: float | None


def write_flood(path: Path, senders: int, span_s: float = 3500.0) -> None:
    """Write ``senders`` TCP SYNs to port 23, each from its own source, spread over ``span_s``."""
    step_ns = int(span_s * NS_PER_S / max(1, senders))
    with path.open("w") as handle:
        handle.write(HEADER)
        for number in range(senders):
            # Sources walk 11.0.0.0/8 upward; the destination cycles over a /24.
            source = 0x0B000000 + number
            src = f"{source >> 24}.{(source >> 16) & 255}.{(source >> 8) & 255}.{source & 255}"
            handle.write(f"{FLOOD_START_NS + number * step_ns},{src},198.51.100.{number % 256},"
                         f"{1024 + number % 60000},23,6,40,2,64,{number},1,\n")


def run_flood(
    senders: int, directory: Path, settings: list[str] | None = None, timeout_s: float = 1800.0
) -> FloodResult:
    """Run the daemon over a flood of ``senders`` and measure it from outside."""
    flood = directory / f"flood-{senders}.csv"
    write_flood(flood, senders)
    log = directory / f"flood-{senders}.log"
    overrides = ["metrics.port=0", *(settings or [])]
    argv = [str(DAEMON), *[f"--set={item}" for item in overrides],
            "run", "--input", str(flood), "--output", str(directory / f"out-{senders}")]
    with log.open("wb") as log_handle:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_handle)
        try:
            result = _watch(child, log, senders, started, timeout_s)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if child.returncode != 0:
        raise RuntimeError(f"flood run exited with {child.returncode}; log:\n{log.read_text()[-4000:]}")
    return result


def _watch(child: subprocess.Popen[bytes], log: Path, senders: int, started: float, timeout_s: float) -> FloodResult:
    process = psutil.Process(child.pid)
    base_url: str | None = None
    ready_rss = peak_rss = 0
    answers = failures = 0
    max_latency_s = 0.0
    vocabulary: float | None = None
    while child.poll() is None:
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"flood of {senders} senders did not finish within {timeout_s} s")
        try:
            rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak_rss = max(peak_rss, rss)
        if base_url is None:
            match = ADDRESS_PATTERN.search(log.read_text(errors="replace"))
            if match:
                base_url = f"http://{match.group(1)}:{match.group(2)}"
        if base_url is not None:
            requested = time.perf_counter()
            try:
                ready = _ask_health(base_url)
            except OSError:
                # Expected only after the flood, when the daemon has stopped its server.
                failures += 1
            else:
                answers += 1
                max_latency_s = max(max_latency_s, time.perf_counter() - requested)
                if ready and not ready_rss:
                    ready_rss = rss
                vocabulary = _vocabulary(base_url) if answers % 10 == 0 else vocabulary
        time.sleep(0.2)
    wall_s = time.perf_counter() - started
    return FloodResult(senders, wall_s, senders / wall_s, ready_rss, peak_rss, answers, failures,
                       max_latency_s, vocabulary)


def _ask_health(base_url: str) -> bool:
    """Return the daemon's readiness; a 503 before start-up completes counts as a response."""
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=5) as response:
            return bool(json.loads(response.read()).get("ready"))
    except urllib.error.HTTPError as error:
        if error.code == 503:
            return False
        raise


def _vocabulary(base_url: str) -> float | None:
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    match = re.search(r"^darkvec_vocabulary_senders (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="flood 1,000,000 senders instead of 200,000")
    args = parser.parse_args(argv)
    sizes = (100_000, 1_000_000) if args.full else (100_000, 200_000)
    print(f"python {platform.python_version()}, {psutil.cpu_count()} cpus, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for senders in sizes:
            result = run_flood(senders, Path(directory))
            results.append(result)
            print(f"{senders:>9} senders: {result.wall_s:6.1f} s wall, {result.records_per_s:8.0f} records/s, "
                  f"RSS ready {result.ready_rss_bytes / 2**20:6.0f} MiB, peak {result.peak_rss_bytes / 2**20:6.0f} MiB, "
                  f"/healthz {result.healthz_answers} answers, {result.healthz_failures} failures, "
                  f"max {result.healthz_max_latency_s * 1000:.0f} ms")
    small, large = results
    growth_small = small.peak_rss_bytes - small.ready_rss_bytes
    growth_large = large.peak_rss_bytes - large.ready_rss_bytes
    print(f"senders x{large.senders / small.senders:.0f}: peak RSS x{large.peak_rss_bytes / small.peak_rss_bytes:.2f}, "
          f"growth over ready x{growth_large / max(1, growth_small):.2f}, "
          f"records/s x{large.records_per_s / small.records_per_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
