"""Scrape /metrics: names and types match docs/operations.md, and series do not grow with senders."""

from __future__ import annotations

import ipaddress
import random
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from darkvec_stream.config import load_settings
from darkvec_stream.daemon import Daemon
from tests.reliability import harness
from tests.reliability.conftest import Reference

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ADDRESS = re.compile(r"metrics and health endpoint on (http://127\.0\.0\.1:\d+)/")
STANDARD_PREFIXES = ("process_", "python_")


def documented_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Parse the metrics table of docs/operations.md into name -> (type, label names)."""
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    in_table = False
    for line in OPERATIONS_DOC.read_text().splitlines():
        if line.startswith("| name | type | labels | meaning |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table and not line.startswith("|---"):
            name, kind, labels, _ = (cell.strip() for cell in line.strip("|").split("|"))
            rows[name.strip("`")] = (kind, tuple(sorted(label.strip("` ") for label in labels.split(",") if label.strip())))
    return rows


def exposed_metrics(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Map each darkvec metric of an exposition to (type, label names), named as exposed."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    families = list(text_string_to_metric_families(text))
    # prometheus_client adds a ``<name>_created`` gauge for every counter and
    # histogram; it is part of the library's format, not of our table.
    created = {family.name + "_created" for family in families if family.type in ("counter", "histogram")}
    for family in families:
        if family.name.startswith(STANDARD_PREFIXES) or family.name in created:
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {key for sample in family.samples for key in sample.labels if key != "le"}
        found[name] = (family.type, tuple(sorted(labels)))
    return found


def series(text: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(text)
        if not family.name.startswith(STANDARD_PREFIXES)
        for sample in family.samples
    ]


@pytest.mark.broker
@pytest.mark.slow
def test_scrape_matches_documented_table(reference: Reference, tmp_path: Path) -> None:
    argv = harness.daemon_argv(
        reference.config, reference.bootstrap, reference.topic, "scrape", tmp_path / "out",
    )
    argv[argv.index("run"):argv.index("run")] = ["--set", "metrics.enabled=true", "--set", "metrics.port=0"]
    daemon = harness.DaemonProcess(argv, tmp_path / "daemon.log")
    try:
        assert daemon.wait_for_log("metrics and health endpoint on", 60), daemon.log_tail()
        match = ADDRESS.search(daemon.log_text())
        assert match is not None, daemon.log_tail()
        assert daemon.wait_for_log("clustered window", 60), daemon.log_tail()
        time.sleep(1.0)
        with urllib.request.urlopen(match.group(1) + "/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.finish(60)

    documented = documented_metrics()
    exposed = exposed_metrics(text)
    assert len(documented) >= 20
    assert sorted(exposed) == sorted(documented)
    for name, (kind, labels) in documented.items():
        assert exposed[name][0] == kind, name
        # A labelled metric exposes no series until its first value, so
        # compare label names only where samples exist.
        if exposed[name][1]:
            assert exposed[name][1] == labels, name


def _run_files(traffic: harness.Traffic, extra_senders: int, directory: Path) -> str:
    """Run the pipeline in-process over the stream plus ``extra_senders`` three-packet senders."""
    lines = [line for message in traffic.messages for line in message.split(b"\n")]
    times_ns = [int(line.split(b",", 1)[0]) for line in lines if line[:1].isdigit()]
    first_ns, span_ns = min(times_ns), max(times_ns) - min(times_ns)
    rng = random.Random(extra_senders)
    for number in range(extra_senders):
        source = ipaddress.IPv4Address(0x0B000000 + number)
        for _ in range(3):
            ts_ns = first_ns + rng.randrange(span_ns)
            lines.append(f"{ts_ns},{source},198.51.100.{number % 256},40000,{rng.choice((22, 23, 80))},6,40,2,64,1,1,".encode())
    lines.sort(key=lambda line: int(line.split(b",", 1)[0]) if line[:1].isdigit() else 0)
    path = directory / f"input-{extra_senders}.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    settings = load_settings(
        harness.write_config(directory / f"config-{extra_senders}.yaml", traffic),
        overrides=[f"output.directory={directory / f'out-{extra_senders}'}", "query.port=0"],
        environ={},
    )
    daemon = Daemon(settings)
    daemon.run_files([str(path)])
    return generate_latest(daemon.metrics.registry).decode()


@pytest.mark.slow
def test_series_bounded_by_vocabularies(reference: Reference, tmp_path: Path) -> None:
    few = _run_files(reference.traffic, 0, tmp_path)
    many = _run_files(reference.traffic, 4000, tmp_path)

    senders_few = float(re.search(r"^darkvec_vocabulary_senders (\S+)$", few, re.MULTILINE).group(1))
    senders_many = float(re.search(r"^darkvec_vocabulary_senders (\S+)$", many, re.MULTILINE).group(1))
    assert senders_many >= 3 * senders_few, (senders_few, senders_many)

    for name, labels in series(many):
        for value in labels.values():
            with pytest.raises(ValueError):
                ipaddress.ip_address(value)
    few_series, many_series = series(few), series(many)
    # The label vocabularies are fixed, so more senders may reveal a few
    # more values (an abstain reason, an alert type) but never one per sender.
    assert len(many_series) <= len(few_series) + 12, (len(few_series), len(many_series))
