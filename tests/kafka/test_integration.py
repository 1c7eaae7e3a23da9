"""Real captures through replay, the broker, the consumer and the windower.

Each window is checked against an independent computation straight from
the capture file (gzip + csv + sorting in plain Python), so a fault in
replay ordering, batching, consuming or decoding shows up as a mismatch.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.replay import replay
from darkvec_stream.kafka.source import KafkaRecordSource
from darkvec_stream.windows import ClosedWindow, SenderFilter, SingleServices, Windower

from tests.shared_data import REAL_DATA as DATA

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"real captures not found at {DATA}"),
]
MARX = DATA / "marx-iptables-2013" / "marx.csv.gz"
DARKVEC = [DATA / "darkvec-polito-sample" / f"darknet01_2021050{day}.csv.gz" for day in (1, 2)]
WINDOW_S = 3600
NS = 1_000_000_000

Packet = tuple[int, str]  # (event time in ns, sender)


def _marx_packets() -> list[Packet]:
    packets = []
    with gzip.open(MARX, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.strptime(row["datetime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            packets.append((int(moment.timestamp()) * NS, str(ipaddress.IPv4Address(int(row["src"])))))
    return packets


def _darkvec_packets() -> list[Packet]:
    packets = []
    for path in DARKVEC:
        with gzip.open(path, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                packets.append((int(Decimal(row["ts"]) * NS), row["src_ip"]))
    return packets


def _expected_windows(packets: list[Packet]) -> dict[int, dict[str, object]]:
    """Per hour: record count, distinct senders, packets per sender, and the one sentence."""
    by_window: dict[int, list[Packet]] = defaultdict(list)
    for ts_ns, sender in packets:
        by_window[ts_ns // (WINDOW_S * NS)].append((ts_ns, sender))
    expected = {}
    for index, window_packets in by_window.items():
        # Ties in event time are ordered by sender, as the windows define it.
        window_packets.sort()
        sentence: list[str] = []
        for _, sender in window_packets:
            if not sentence or sentence[-1] != sender:
                sentence.append(sender)
        expected[index] = {
            "records": len(window_packets),
            "packets": Counter(sender for _, sender in window_packets),
            "sentence": tuple(sentence),
        }
    return expected


def _window_through_kafka(
    broker: EmbeddedBroker, files: list[Path], format: str, options: dict[str, str], expected_records: int
) -> list[ClosedWindow]:
    topic = f"integration-{uuid.uuid4().hex[:8]}"
    summary = replay(files, topic, broker.bootstrap_servers, format=format, decoder_options=options)
    assert summary.records == expected_records
    assert sum(summary.rejects.values()) == 0

    windower = Windower(
        window_s=WINDOW_S, lateness_s=0, services=SingleServices(), sender_filter=SenderFilter(min_packets=1)
    )
    closed: list[ClosedWindow] = []
    consumed = 0
    consumer = RecordConsumer(broker.bootstrap_servers, [topic], f"group-{topic}", assignment="manual")
    with consumer:
        source = KafkaRecordSource(consumer, "record-csv", poll_timeout_ms=500)
        for _ in range(2000):
            for position, records, rejects in source.poll():
                assert rejects == []
                closed += windower.add_many(records, position)
                consumed += len(records)
            if consumed >= expected_records:
                break
    closed += windower.flush()
    assert consumed == expected_records
    assert windower.late_records == 0
    return closed


def _check_windows(closed: list[ClosedWindow], expected: dict[int, dict[str, object]]) -> None:
    assert [window.index for window in closed] == sorted(expected)
    for window in closed:
        truth = expected[window.index]
        packets = truth["packets"]
        assert isinstance(packets, Counter)
        assert window.records == truth["records"], window.index
        assert window.senders_seen == len(packets), window.index
        assert {sender: activity.packets for sender, activity in window.activity.items()} == dict(packets)
        assert len(window.sentences) == 1, window.index
        assert window.sentences[0].senders == truth["sentence"], window.index


def test_marx_windows_match_file(kafka_broker: EmbeddedBroker) -> None:
    packets = _marx_packets()

    closed = _window_through_kafka(kafka_broker, [MARX], "csv", {"preset": "marx-iptables"}, len(packets))

    _check_windows(closed, _expected_windows(packets))
    assert sum(window.records for window in closed) == 451_581


def test_darkvec_samples_windows_match_files(kafka_broker: EmbeddedBroker) -> None:
    packets = _darkvec_packets()

    closed = _window_through_kafka(kafka_broker, DARKVEC, "darkvec-csv", {}, len(packets))

    _check_windows(closed, _expected_windows(packets))
    assert sum(window.records for window in closed) == 6_000
    assert len(closed) == 2
