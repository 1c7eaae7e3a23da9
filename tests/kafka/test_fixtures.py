"""The shared fixtures work: produce to a fresh topic and read it back."""

from __future__ import annotations

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.testing import KafkaIO


@pytest.mark.broker
def test_kafka_io_round_trip(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    values = [f"value-{number}".encode() for number in range(50)]

    assert kafka_io.produce(unique_topic, values) == 50
    messages = kafka_io.consume(unique_topic, 50)

    assert [message[3] for message in messages] == values
    assert {message[1] for message in messages} == {0}
    assert [message[2] for message in messages] == list(range(50))


@pytest.mark.broker
def test_unique_topic_differs_per_test(unique_topic: str, kafka_io: KafkaIO) -> None:
    assert unique_topic.startswith("test_unique_topic_differs_per_test-")
    assert kafka_io.partitions(unique_topic) == [0, 1, 2, 3]
