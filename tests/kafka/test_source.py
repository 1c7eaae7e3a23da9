"""KafkaRecordSource: decode each message, keep positions, turn failures into rejects."""

from __future__ import annotations

import uuid

import pytest

from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import encode_records
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.source import KafkaRecordSource
from darkvec_stream.kafka.testing import KafkaIO

pytestmark = pytest.mark.broker

NS = 1_000_000_000


def _records(count: int, start_s: int = 0) -> list[Record]:
    return [
        Record(ts_ns=(1_700_000_000 + start_s + number) * NS, src=f"198.51.100.{number}", dst_port=23, proto=6)
        for number in range(count)
    ]


def _consumer(broker: EmbeddedBroker, topic: str) -> RecordConsumer:
    return RecordConsumer(broker.bootstrap_servers, [topic], f"group-{uuid.uuid4().hex[:8]}", assignment="manual")


def _drain(source: KafkaRecordSource, messages: int) -> list[tuple]:
    decoded: list[tuple] = []
    for _ in range(50):
        decoded.extend(source.poll())
        if len(decoded) >= messages:
            break
    return decoded


def test_source_decodes_each_message(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    first, second = _records(3), _records(2, start_s=10)
    payloads = [encode_records(first), b"", encode_records(second) + b"\nthis,is,not,a,record"]
    kafka_io.produce(unique_topic, payloads)

    with _consumer(kafka_broker, unique_topic) as consumer:
        decoded = _drain(KafkaRecordSource(consumer, "record-csv", poll_timeout_ms=200), 3)

    positions = [position for position, _, _ in decoded]
    assert positions == [(unique_topic, 0, 0), (unique_topic, 0, 1), (unique_topic, 0, 2)]
    assert decoded[0][1] == first
    assert decoded[0][2] == []
    assert decoded[1][1] == []
    assert [reject.reason for reject in decoded[1][2]] == ["empty"]
    assert decoded[2][1] == second
    assert len(decoded[2][2]) == 1
    assert decoded[2][2][0].origin.source == unique_topic
    assert decoded[2][2][0].origin.offset == 2


def test_decoder_crash_becomes_reject(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    class FragileDecoder:
        # A decoder with a bug on one payload: the source under test must
        # survive it and keep decoding later messages.
        def decode_message(self, payload: bytes, origin: Origin) -> tuple[list[Record], list[Rejected]]:
            if payload == b"boom":
                raise ZeroDivisionError("division by zero")
            return [Record(ts_ns=int(payload), src="192.0.2.7")], []

    kafka_io.produce(unique_topic, [b"1", b"boom", b"3"])
    with _consumer(kafka_broker, unique_topic) as consumer:
        source = KafkaRecordSource(consumer, "custom", decoder_factory=lambda format, **options: FragileDecoder())
        decoded = _drain(source, 3)

    assert [len(records) for _, records, _ in decoded] == [1, 0, 1]
    reject = decoded[1][2][0]
    assert reject.reason == "malformed"
    assert "ZeroDivisionError" in reject.detail
    assert reject.raw == b"boom"
    assert source.decoder_errors == 1


def test_unknown_format_fails_at_construction(kafka_broker: EmbeddedBroker, unique_topic: str) -> None:
    from darkvec_stream.errors import ConfigError

    consumer = _consumer(kafka_broker, unique_topic)
    with pytest.raises(ConfigError, match="unknown input format 'nope'"):
        KafkaRecordSource(consumer, "nope")
