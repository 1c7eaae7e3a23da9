"""RecordConsumer against the real broker: join, explicit commits, seeks, lag, outage."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.consumer import Message, RecordConsumer
from darkvec_stream.kafka.testing import KafkaIO, produce_values

pytestmark = pytest.mark.broker


def _group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


def _poll_until(consumer: RecordConsumer, count: int, timeout_s: float = 20.0) -> list[Message]:
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count and time.monotonic() < deadline:
        messages.extend(consumer.poll_batch(timeout_ms=200))
    return messages


def _values(count: int, prefix: str = "v") -> list[bytes]:
    return [f"{prefix}{number}".encode() for number in range(count)]


def test_group_join_is_fast(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(10))
    started = time.monotonic()

    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group()) as consumer:
        messages = _poll_until(consumer, 10)
        elapsed_s = time.monotonic() - started

        assert len(messages) == 10
        assert elapsed_s < 10
        assert consumer.assignment() == [(unique_topic, number) for number in range(4)]


def test_commit_then_resume_from_commit(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, caplog: pytest.LogCaptureFixture
) -> None:
    kafka_io.produce(unique_topic, _values(20))
    group = _group()
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], group, assignment="manual") as first:
        assert len(_poll_until(first, 20)) == 20
        first.commit({(unique_topic, 0): 12})
        assert first.committed([(unique_topic, 0)]) == {(unique_topic, 0): 12}

    with caplog.at_level(logging.INFO, logger="darkvec_stream.kafka.consumer"):
        with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], group, assignment="manual") as second:
            resumed = _poll_until(second, 8)

    assert [message[2] for message in resumed] == list(range(12, 20))
    assert [message[3] for message in resumed] == _values(20)[12:]
    assert f"consuming {unique_topic}[0] from offset 12 (committed offset)" in caplog.text
    assert f"consuming {unique_topic}[1] from offset 0 (auto_offset_reset=earliest)" in caplog.text


def test_nothing_committed_without_commit(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(5))
    group = _group()
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], group, assignment="manual") as first:
        assert len(_poll_until(first, 5)) == 5

    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], group, assignment="manual") as second:
        again = _poll_until(second, 5)

        assert [message[2] for message in again] == [0, 1, 2, 3, 4]
        assert second.committed([(unique_topic, 0)]) == {(unique_topic, 0): None}


def test_latest_reset_skips_existing(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    # One message per produce call: Tansu 0.6.0 reports the end offset as the
    # last batch's base offset + 1, which is only right for one-message batches.
    for value in _values(5, "old"):
        kafka_io.produce(unique_topic, [value])
    with RecordConsumer(
        kafka_broker.bootstrap_servers, [unique_topic], _group(), assignment="manual", auto_offset_reset="latest"
    ) as consumer:
        assert consumer.poll_batch(timeout_ms=500) == []
        kafka_io.produce(unique_topic, _values(3, "new"))
        fresh = _poll_until(consumer, 3)

    assert [message[3] for message in fresh] == _values(3, "new")


def test_seek_to_checkpoint_offsets(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(10), partition=0)
    kafka_io.produce(unique_topic, _values(6, "p2-"), partition=2)
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group(), assignment="manual") as consumer:
        consumer.seek_to({(unique_topic, 0): 7, (unique_topic, 2): 4})
        messages = _poll_until(consumer, 5)

        assert sorted((message[1], message[2]) for message in messages) == [(0, 7), (0, 8), (0, 9), (2, 4), (2, 5)]
        assert consumer.positions()[(unique_topic, 0)] == 10
        assert consumer.positions()[(unique_topic, 2)] == 6


def test_seek_waits_for_group_assignment(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(10))
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group()) as consumer:
        assert consumer.assignment() == []
        consumer.seek_to({(unique_topic, 0): 6})
        messages = _poll_until(consumer, 4)

    assert [message[2] for message in messages] == [6, 7, 8, 9]


def test_lag_per_partition(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(30), partition=0)
    # Partition 1 gets one-message batches, so even Tansu 0.6.0's ListOffsets
    # (last batch's base offset + 1) reports its true end before any fetch.
    for value in _values(5):
        kafka_io.produce(unique_topic, [value], partition=1)
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group(), assignment="manual") as consumer:
        before = consumer.lag()
        consumer.seek_to({(unique_topic, 0): 20, (unique_topic, 1): 3})
        first = consumer.poll_batch(timeout_ms=2000, max_records=4)
        partial = consumer.lag()
        _poll_until(consumer, 12 - len(first))
        after = consumer.lag()

    assert before[(unique_topic, 1)] == 5
    assert 0 < len(first) <= 4
    fetched = {partition for _, partition, _, _ in first}
    for partition, start, end in ((0, 20, 30), (1, 3, 5)):
        if partition in fetched:
            read = sum(1 for message in first if message[1] == partition)
            assert partial[(unique_topic, partition)] == end - start - read
    assert after == {(unique_topic, number): 0 for number in range(4)}


def test_poll_batch_is_bounded(kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO) -> None:
    kafka_io.produce(unique_topic, _values(50))
    with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group(), assignment="manual") as consumer:
        sizes = []
        deadline = time.monotonic() + 10
        while sum(sizes) < 50 and time.monotonic() < deadline:
            sizes.append(len(consumer.poll_batch(timeout_ms=200, max_records=7)))

    assert sum(sizes) == 50
    assert max(sizes) <= 7


def test_manual_assignment_missing_topic(kafka_broker: EmbeddedBroker) -> None:
    consumer = RecordConsumer(
        kafka_broker.bootstrap_servers, ["no-such-topic"], _group(), assignment="manual", metadata_timeout_s=1.0
    )
    # The test broker auto-creates topics on producer metadata requests only,
    # so a consumer looking for an unknown topic must give up with a clear error.
    try:
        with pytest.raises(InputError, match="no-such-topic"):
            consumer.start()
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ({("t", 0): -1}, "offset -1 for t\\[0\\] is invalid"),
        ({("t", 0): 1.5}, "offset 1.5 for t\\[0\\] is invalid"),
        ({("t",): 3}, "offset key \\('t',\\) is invalid"),
    ],
)
def test_invalid_offsets_rejected(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, offsets: dict, message: str
) -> None:
    consumer = RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], _group(), assignment="manual")
    kafka_io.produce(unique_topic, [b"x"])
    with consumer:
        with pytest.raises(InputError, match=message):
            consumer.commit(offsets)
        with pytest.raises(InputError, match=message):
            consumer.seek_to(offsets)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"topics": []}, "topics"),
        ({"topics": "records"}, "topics"),
        ({"group_id": ""}, "group_id is empty"),
        ({"assignment": "static"}, "assignment 'static' is invalid"),
        ({"auto_offset_reset": "none"}, "auto_offset_reset 'none' is invalid"),
        ({"session_timeout_ms": 2000, "heartbeat_interval_ms": 1000}, "at least three times"),
        ({"max_poll_interval_ms": 1000}, "max_poll_interval_ms 1000 is below"),
        ({"max_poll_records": 0}, "max_poll_records 0 is invalid"),
        ({"retry_backoff_initial_ms": 0}, "retry backoff"),
    ],
)
def test_invalid_consumer_settings(settings: dict, message: str) -> None:
    arguments = {"bootstrap_servers": "127.0.0.1:9", "topics": ["records"], **settings}
    with pytest.raises(ConfigError, match=message):
        RecordConsumer(**arguments)


@pytest.mark.slow
def test_outage_loses_and_repeats_nothing(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, caplog: pytest.LogCaptureFixture
) -> None:
    kafka_io.produce(unique_topic, _values(100, "before-"))
    group = _group()
    received: list[Message] = []
    producer_done = threading.Event()

    def produce_during_outage() -> None:
        # Sent while the broker is frozen: the producer retries until it thaws.
        produce_values(kafka_broker.bootstrap_servers, unique_topic, _values(100, "during-"))
        producer_done.set()

    with caplog.at_level(logging.INFO, logger="darkvec_stream.kafka.consumer"):
        with RecordConsumer(
            kafka_broker.bootstrap_servers, [unique_topic], group, health_check_interval_s=2.0
        ) as consumer:
            received += _poll_until(consumer, 60)
            consumer.commit({(unique_topic, 0): received[-1][2] + 1})

            # 1. Freeze the broker for 20 s while polling and producing.
            kafka_broker.pause()
            producer = threading.Thread(target=produce_during_outage)
            producer.start()
            resumer = threading.Timer(20.0, kafka_broker.resume)
            resumer.start()
            outage_end = time.monotonic() + 21
            while time.monotonic() < outage_end:
                received += consumer.poll_batch(timeout_ms=500)

            # 2. After the thaw everything arrives, and commits work again.
            received += _poll_until(consumer, 200 - len(received), timeout_s=60)
            consumer.commit({(unique_topic, 0): 200})
            committed = consumer.committed([(unique_topic, 0)])
            resumer.join()
            producer.join(timeout=60)

    assert producer_done.is_set()
    offsets = [message[2] for message in received]
    assert len(offsets) == 200
    assert sorted(offsets) == list(range(200))
    assert sorted(message[3] for message in received) == sorted(_values(100, "before-") + _values(100, "during-"))
    assert committed == {(unique_topic, 0): 200}
    assert "Kafka broker health check failed (attempt 1" in caplog.text
    assert "succeeded again after" in caplog.text


@pytest.mark.slow
def test_rebalance_does_not_repeat_messages(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO
) -> None:
    kafka_io.produce(unique_topic, _values(10), partition=0)
    group = _group()
    revoked: list[list[tuple[str, int]]] = []
    # Short sessions only to keep the three rebalances of this test quick.
    fast = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
    with RecordConsumer(
        kafka_broker.bootstrap_servers, [unique_topic], group, on_revoked=revoked.append, **fast
    ) as first:
        received = _poll_until(first, 10)
        assert len(received) == 10

        # 1. A second member joins and leaves; nothing was committed, so a
        #    plain consumer would restart partition 0 from the earliest offset.
        second_done = threading.Event()

        def second_member() -> None:
            with RecordConsumer(kafka_broker.bootstrap_servers, [unique_topic], group, **fast) as second:
                deadline = time.monotonic() + 30
                while not second.assignment() and time.monotonic() < deadline:
                    second.poll_batch(timeout_ms=200)
            second_done.set()

        thread = threading.Thread(target=second_member)
        thread.start()
        deadline = time.monotonic() + 60
        while (not second_done.is_set() or len(first.assignment()) < 4) and time.monotonic() < deadline:
            received += first.poll_batch(timeout_ms=200)
        thread.join()

        # 2. New messages still arrive, and the first ten are not repeated.
        kafka_io.produce(unique_topic, _values(3, "late-"), partition=0)
        received += _poll_until(first, 3)

    assert len(revoked) >= 1
    assert [message[2] for message in received if message[1] == 0] == list(range(13))
