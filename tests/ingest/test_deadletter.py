from __future__ import annotations

import logging
from pathlib import Path

import pytest

from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.deadletter import (
    JsonlDeadLetter,
    KafkaDeadLetter,
    RejectCounter,
    read_jsonl,
    rejected_from_json,
    rejected_to_json,
)
from darkvec_stream.ingest.record import Origin, Rejected

TEXT_REJECT = Rejected("bad_port", "dst_port: value '70000' outside 0..65535", b"1,10.0.0.1,70000",
                       Origin("feed", 3, 17, 2))
BINARY_REJECT = Rejected("truncated", "packet 4: IPv4 header needs 20 bytes", b"\x45\x00\xff\xfe",
                         Origin("/tmp/x.pcap", line=4))


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_json_round_trip_text_and_binary() -> None:
    assert rejected_to_json(TEXT_REJECT)["raw_encoding"] == "utf-8"
    assert rejected_to_json(BINARY_REJECT)["raw_encoding"] == "base64"
    for rejected in (TEXT_REJECT, BINARY_REJECT):
        assert rejected_from_json(rejected_to_json(rejected)) == rejected


def test_jsonl_sink_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = JsonlDeadLetter(path, batch_size=2)
    _, rejects = get_decoder("record-csv").decode_message(b"x\n\xff\xfe\n1,10.0.0.1,,,70000,6,,,,,1,", Origin("t"))
    for rejected in rejects:
        sink.put(rejected)
    sink.close()
    assert read_jsonl(path) == rejects
    assert sink.written == 3
    assert sink.dropped == 0


def test_jsonl_sink_retries_with_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing_directory = tmp_path / "later"
    clock = FakeClock()
    sink = JsonlDeadLetter(missing_directory / "dead.jsonl", batch_size=1, backoff_initial_s=1.0,
                           backoff_max_s=4.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="darkvec_stream.ingest.deadletter"):
        sink.put(TEXT_REJECT)
        clock.now_s = 0.5
        sink.flush()
        clock.now_s = 1.0
        sink.flush()
    retries = [record for record in caplog.records if "retrying in" in record.getMessage()]
    assert [record.getMessage().split("retrying in ")[1] for record in retries] == ["1.0 s", "2.0 s"]
    assert sink.buffered == 1
    missing_directory.mkdir()
    clock.now_s = 3.0
    sink.flush()
    assert sink.buffered == 0
    assert read_jsonl(missing_directory / "dead.jsonl") == [TEXT_REJECT]
    sink.close()


def test_bounded_buffer_counts_drops(tmp_path: Path) -> None:
    sink = JsonlDeadLetter(tmp_path / "absent" / "dead.jsonl", max_buffered=3, batch_size=100)
    for _ in range(5):
        sink.put(TEXT_REJECT)
    assert sink.buffered == 3
    assert sink.dropped == 2
    sink.close()
    assert sink.dropped == 5


class FlakyProducer:
    """Stands in for a broker client that fails a given number of flushes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.pending: list[tuple[str, bytes, bytes]] = []
        self.delivered: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> None:
        self.pending.append((topic, value or b"", key or b""))

    def flush(self, timeout: float | None = None) -> None:
        if self.failures:
            self.failures -= 1
            self.pending.clear()
            raise TimeoutError("flush timed out")
        self.delivered.extend(self.pending)
        self.pending.clear()


def test_kafka_sink_retries_then_delivers() -> None:
    import orjson

    producer = FlakyProducer(failures=1)
    clock = FakeClock()
    sink = KafkaDeadLetter(producer, "darkvec-dead-letter", batch_size=2, clock=clock)
    sink.put(TEXT_REJECT)
    sink.put(BINARY_REJECT)
    assert producer.delivered == []
    clock.now_s = 10.0
    sink.close()
    assert [key for _, _, key in producer.delivered] == [b"bad_port", b"truncated"]
    decoded = [rejected_from_json(orjson.loads(value)) for _, value, _ in producer.delivered]
    assert decoded == [TEXT_REJECT, BINARY_REJECT]


@pytest.mark.broker
def test_kafka_sink_against_broker(kafka_broker, unique_topic: str) -> None:
    import orjson
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    sink = KafkaDeadLetter(producer, unique_topic)
    sink.put(TEXT_REJECT)
    sink.put(BINARY_REJECT)
    sink.close()
    producer.close()
    consumer = KafkaConsumer(unique_topic, bootstrap_servers=kafka_broker.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    received = set()
    for message in consumer:
        received.add(rejected_from_json(orjson.loads(message.value)))
        if len(received) == 2:
            break
    consumer.close()
    assert received == {TEXT_REJECT, BINARY_REJECT}


def test_reject_counter() -> None:
    counter = RejectCounter()
    counter.add(TEXT_REJECT)
    counter.add_all([BINARY_REJECT, BINARY_REJECT])
    assert counter.by_reason() == {"bad_port": 1, "truncated": 2}
    assert counter.count("malformed") == 0
    assert counter.total == 3
