"""Kafka sink against the real embedded broker: keys are alert ids, values the rendering."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError

from darkvec_stream.alerts.formats import render
from darkvec_stream.alerts.sinks import KafkaSink
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.testing import partitions_of
from tests.alerts.factories import CONTEXT, make_alert
from tests.alerts.servers import FakeClock


def _consume_all(
    bootstrap: str, topic: str, count: int, timeout_s: float = 20.0
) -> list:  # type: ignore[type-arg]
    partitions = [TopicPartition(topic, p) for p in partitions_of(bootstrap, topic)]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records


@pytest.mark.broker
def test_kafka_sink_keys_by_alert_id(kafka_broker: EmbeddedBroker, unique_topic: str) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=10_000)
    sink = KafkaSink(producer, unique_topic, "ecs", context=CONTEXT)
    alerts = [make_alert(index) for index in range(3)]
    for alert in alerts:
        sink.send(alert)
    sink.flush()
    producer.close(timeout=5)
    assert sink.stats.delivered == 3

    records = _consume_all(bootstrap, unique_topic, 3)
    by_key = {record.key.decode(): record.value for record in records}
    assert set(by_key) == {alert.alert_id for alert in alerts}
    for alert in alerts:
        assert by_key[alert.alert_id] == render(alert, "ecs", CONTEXT)
        assert orjson.loads(by_key[alert.alert_id])["event"]["kind"] == "alert"


class _OutageProducer:
    """A producer whose broker is unreachable until ``reachable`` is set (no network)."""

    def __init__(self) -> None:
        self.reachable = False
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> None:
        if not self.reachable:
            raise KafkaTimeoutError("Failed to update metadata after 5.0 secs.")
        assert value is not None and key is not None
        self.sent.append((topic, key, value))

    def flush(self, timeout: float | None = None) -> None:
        return None


def test_kafka_sink_buffers_while_broker_unreachable() -> None:
    producer = _OutageProducer()
    clock = FakeClock()
    sink = KafkaSink(producer, "alerts", context=CONTEXT, clock=clock)
    sink.send(make_alert(0))
    sink.send(make_alert(1))
    assert sink.stats.buffered == 2
    assert not sink.available
    producer.reachable = True
    clock.advance(1.0)
    sink.poll()
    assert [key.decode() for _, key, _ in producer.sent] == [
        make_alert(0).alert_id, make_alert(1).alert_id,
    ]
    assert sink.available
