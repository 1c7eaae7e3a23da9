"""Small produce and consume helpers for tests and benchmarks against a broker.

They favour speed over realism: the consumer uses ``assign()`` (no group join)
and reads from the earliest offset. Pipeline code uses ``RecordConsumer``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

Message = tuple[str, int, int, bytes]


def produce_values(
    bootstrap_servers: str,
    topic: str,
    values: Iterable[bytes],
    partition: int | None = 0,
    key: bytes | None = None,
) -> int:
    """Send each value to ``topic`` (``partition`` None lets the key decide) and flush."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=5, acks=1)
    sent = 0
    try:
        for value in values:
            producer.send(topic, value=value, key=key, partition=partition)
            sent += 1
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
    return sent


def partitions_of(bootstrap_servers: str, topic: str, timeout_s: float = 10.0) -> list[int]:
    """Return the partition numbers of ``topic``, auto-creating it on brokers that do.

    A producer requests metadata with auto-creation allowed, and a consumer does not.
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, max_block_ms=int(timeout_s * 1000))
    try:
        return sorted(producer.partitions_for(topic))
    finally:
        producer.close(timeout=5)


def consume_values(
    bootstrap_servers: str,
    topic: str,
    count: int,
    timeout_s: float = 15.0,
) -> list[Message]:
    """Read ``count`` messages from every partition of ``topic`` from the start.

    Returns ``(topic, partition, offset, value)`` tuples in arrival order and
    raises TimeoutError, naming how many arrived, if fewer than ``count`` come.
    """
    partitions = partitions_of(bootstrap_servers, topic, timeout_s)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    messages: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, number) for number in partitions])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while len(messages) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                messages.extend((m.topic, m.partition, m.offset, m.value) for m in batch)
    finally:
        consumer.close()
    if len(messages) < count:
        raise TimeoutError(f"only {len(messages)} of {count} messages arrived on {topic!r} within {timeout_s} s")
    return messages


class KafkaIO:
    """The helpers above bound to one broker, as handed to tests by a fixture."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def produce(self, topic: str, values: Iterable[bytes], partition: int | None = 0) -> int:
        return produce_values(self.bootstrap_servers, topic, values, partition=partition)

    def consume(self, topic: str, count: int, timeout_s: float = 15.0) -> list[Message]:
        return consume_values(self.bootstrap_servers, topic, count, timeout_s=timeout_s)

    def partitions(self, topic: str) -> list[int]:
        return partitions_of(self.bootstrap_servers, topic)
