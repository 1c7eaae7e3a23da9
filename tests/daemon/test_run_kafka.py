"""Real captures replayed through the broker into ``darkvec-stream run``.

The daemon dumps each closed window's sentences; the test recomputes every
window from the file with plain Python and compares records, senders and
sentences. Windows are one day for marx (six months of sparse traffic) so the
whole pipeline runs in seconds per window.
"""

import csv
import gzip
import ipaddress
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from darkvec_stream.kafka.replay import replay
from tests.shared_data import REAL_DATA

CLI = str(Path(sys.executable).with_name("darkvec-stream"))
NS = 1_000_000_000
MARX = REAL_DATA / "marx-iptables-2013" / "marx.csv.gz"
DARKVEC = [REAL_DATA / "darkvec-polito-sample" / f"darknet01_2021050{day}.csv.gz" for day in (1, 2)]

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real captures not found at {REAL_DATA}"),
]


def _marx_packets():
    with gzip.open(MARX, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.strptime(row["datetime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            yield int(moment.timestamp()) * NS, str(ipaddress.IPv4Address(int(row["src"])))


def _darkvec_packets():
    for path in DARKVEC:
        with gzip.open(path, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                yield int(Decimal(row["ts"]) * NS), row["src_ip"]


def _expected(packets, window_s):
    """Per window start (ISO, UTC): (records, senders, the single sentence)."""
    by_window = defaultdict(list)
    for ts_ns, sender in packets:
        by_window[ts_ns // (window_s * NS)].append((ts_ns, sender))
    expected = {}
    for index, items in by_window.items():
        items.sort()
        sentence = []
        for _, sender in items:
            if not sentence or sentence[-1] != sender:
                sentence.append(sender)
        start = datetime.fromtimestamp(index * window_s, tz=timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
        expected[start] = (len(items), len({sender for _, sender in items}), sentence)
    return expected


def _run_daemon(broker, files, fmt, options, window_s, tmp_path):
    topic = f"run-{uuid.uuid4().hex[:8]}"
    summary = replay(files, topic, broker.bootstrap_servers, format=fmt, decoder_options=options)
    dump = tmp_path / "sentences"
    command = [
        CLI, "--log-level", "INFO",
        "--set", f"kafka.bootstrap_servers={broker.bootstrap_servers}",
        "--set", f"kafka.topic={topic}",
        "--set", f"kafka.group_id=g-{topic}",
        "--set", f"windows.window_s={window_s}",
        "--set", "windows.lateness_s=0",
        "--set", "services.mode=single",
        "--set", "sender_filter.min_packets=1",
        "--set", "embedding.vector_size=8",
        "--set", "embedding.epochs_per_window=1",
        "--set", "clusters.every_windows=100000",
        "--set", "checkpoint.enabled=false",
        "--set", "metrics.enabled=false",
        "run", "--output", str(tmp_path / "out"), "--dump-sentences", str(dump),
        "--exit-when-idle", "4", "--flush-at-exit",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return summary, dump, completed


def _check(dump, expected, log):
    files = sorted(dump.glob("*.txt"))
    assert [path.stem for path in files] == sorted(expected)
    for path in files:
        lines = path.read_text().splitlines()
        assert len(lines) == 1, path.name
        service, senders = lines[0].split("\t")
        records, sender_count, sentence = expected[path.stem]
        assert senders.split(" ") == sentence, path.name
    closes = re.findall(r"closed window (\S+): (\d+) records, (\d+) senders seen", log)
    assert len(closes) == len(expected)
    for start, records, senders in closes:
        key = start.replace(":", "-")
        assert (int(records), int(senders)) == expected[key][:2], start


def test_darkvec_samples_through_run(kafka_broker, tmp_path):
    expected = _expected(_darkvec_packets(), 3600)
    summary, dump, completed = _run_daemon(kafka_broker, DARKVEC, "darkvec-csv", {}, 3600, tmp_path)
    assert summary.records == 6000
    _check(dump, expected, completed.stderr)
    assert "records read 6000, accepted 6000, rejected 0" in completed.stdout


def test_marx_through_run(kafka_broker, tmp_path):
    expected = _expected(_marx_packets(), 86400)
    summary, dump, completed = _run_daemon(
        kafka_broker, [MARX], "csv", {"preset": "marx-iptables"}, 86400, tmp_path
    )
    assert summary.records == 451_581
    _check(dump, expected, completed.stderr)
    assert "records read 451581, accepted 451581, rejected 0" in completed.stdout
