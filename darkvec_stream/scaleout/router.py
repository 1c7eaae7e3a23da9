"""The router: re-key records from a raw topic by service into the by-service topic.

A consumer group reads the raw topic, whatever its partitioning, and sends
each source message's records to the partition of their service, one
message per source message and target partition, headed by the source
position. Offsets are committed only after the producer flushed, so
delivery is at least once; workers drop the copies a restarted router
sends again by that header. Windowing is the workers' job, not this one's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from darkvec_stream.errors import DarkvecError, StateError
from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.deadletter import DeadLetterSink
from darkvec_stream.ingest.record import Origin, Record
from darkvec_stream.ingest.wire import encode_line
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.security import KafkaSecurity, masked
from darkvec_stream.scaleout.lifecycle import StopRequest
from darkvec_stream.scaleout.metrics import RouterMetrics
from darkvec_stream.scaleout.routing import ServiceRouter
from darkvec_stream.scaleout.worker import SOURCE_PREFIX
from darkvec_stream.windows.services import ServiceMap

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]


@dataclass
class RouterSummary:
    """Counts of one router run."""

    messages_read: int = 0
    records_routed: int = 0
    records_rejected: int = 0
    messages_sent: int = 0


def routed_messages(source: str, groups: dict[int, list[Record]], max_message_bytes: int) -> list[tuple[int, bytes]]:
    """Encode each partition's records as messages headed ``#source SOURCE:CHUNK``.

    A group too large for one message is cut into numbered chunks; the
    cut depends only on the records, so a router sending the same source
    message again produces byte-identical messages with the same ids.
    """
    messages: list[tuple[int, bytes]] = []
    for partition in sorted(groups):
        lines = [encode_line(record) for record in groups[partition]]
        chunk, size, first = 0, 0, 0
        for number, line in enumerate(lines):
            if size + len(line) + 1 > max_message_bytes - 200 and number > first:
                messages.append((partition, _routed(source, chunk, lines[first:number])))
                chunk, size, first = chunk + 1, 0, number
            size += len(line) + 1
        messages.append((partition, _routed(source, chunk, lines[first:])))
    return messages


def _routed(source: str, chunk: int, lines: list[str]) -> bytes:
    return SOURCE_PREFIX + f"{source}:{chunk}\n".encode() + "\n".join(lines).encode("utf-8")


class Router:
    """Consume the raw topic in a consumer group and produce its records keyed by service."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        raw_topic: str,
        records_topic: str,
        group_id: str,
        services: ServiceMap,
        dead_letter: DeadLetterSink,
        input_format: str = "record-csv",
        decoder_options: dict[str, Any] | None = None,
        max_message_bytes: int = 900_000,
        poll_timeout_ms: int = 500,
        max_poll_records: int = 500,
        consumer_options: dict[str, Any] | None = None,
        security: KafkaSecurity | None = None,
        metrics: RouterMetrics | None = None,
        consumer_factory: Callable[..., RecordConsumer] = RecordConsumer,
        producer_factory: Callable[..., KafkaProducer] = KafkaProducer,
    ) -> None:
        if raw_topic == records_topic:
            raise DarkvecError(f"the router would read and write topic {raw_topic!r}: give two different topics")
        self.bootstrap_servers = bootstrap_servers
        self.raw_topic = raw_topic
        self.records_topic = records_topic
        self.group_id = group_id
        self.max_message_bytes = max_message_bytes
        self.poll_timeout_ms = poll_timeout_ms
        self.max_poll_records = max_poll_records
        self.metrics = metrics or RouterMetrics()
        self.summary = RouterSummary()
        self._services = services
        self._dead_letter = dead_letter
        # Built now so that an unknown format or option fails before Kafka is touched.
        self._decoder = get_decoder(input_format, **dict(decoder_options or {}))
        self._consumer_options = dict(consumer_options or {})
        self._security = security or KafkaSecurity()
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory

    def run(self, stop: StopRequest, exit_when_idle_s: float | None = None) -> RouterSummary:
        """Route until ``stop`` is set, or until idle and caught up for finite inputs."""
        options = {
            "bootstrap_servers": self.bootstrap_servers, "acks": "all", "linger_ms": 5, "retries": 5,
            # One request in flight per connection, so a retried batch cannot
            # overtake the next one and reorder a partition.
            "max_in_flight_requests_per_connection": 1, "max_request_size": self.max_message_bytes + 65_536,
            **self._security.client_options(),
        }
        logger.info("router producing to %s with %s", self.records_topic, masked(options))
        try:
            producer = self._producer_factory(**options)
        except KafkaError as error:
            raise DarkvecError(f"cannot connect a producer to {self.bootstrap_servers}: {error}") from error
        try:
            partitions = producer.partitions_for(self.records_topic)
            if not partitions:
                raise DarkvecError(f"topic {self.records_topic!r} has no partitions: create it")
            router = ServiceRouter(self._services, len(partitions))
            consumer = self._consumer_factory(
                self.bootstrap_servers, [self.raw_topic], self.group_id, security=self._security,
                max_poll_records=self.max_poll_records, **self._consumer_options,
            )
            with consumer:
                self._consume(consumer, producer, router, stop, exit_when_idle_s)
        except KafkaError as error:
            raise DarkvecError(f"Kafka at {self.bootstrap_servers} failed: {error}; a restart resumes "
                               "from the last commit") from error
        finally:
            producer.close(timeout=10)
            self._dead_letter.close()
        return self.summary

    def _consume(self, consumer: RecordConsumer, producer: Any, router: ServiceRouter, stop: StopRequest,
                 exit_when_idle_s: float | None) -> None:
        idle_since = time.monotonic()
        while not stop:
            messages = consumer.poll_batch(self.poll_timeout_ms, self.max_poll_records)
            if not messages:
                if exit_when_idle_s is not None and time.monotonic() - idle_since >= exit_when_idle_s:
                    if consumer.assignment() and not any(consumer.lag().values()):
                        logger.info("no records for %.1f s and no lag: stopping", exit_when_idle_s)
                        return
                    idle_since = time.monotonic()
                continue
            idle_since = time.monotonic()
            positions: dict[PartitionKey, int] = {}
            for topic, partition, offset, value in messages:
                self.route(producer, router, topic, partition, offset, value or b"")
                positions[(topic, partition)] = offset + 1

            # Commit only what the broker acknowledged: a crash before the
            # commit sends these messages again, which workers drop.
            producer.flush()
            self._dead_letter.flush()
            try:
                consumer.commit(positions)
            except StateError as error:
                logger.warning("commit skipped: %s", error)

    def route(self, producer: Any, router: ServiceRouter, topic: str, partition: int, offset: int, value: bytes) -> None:
        """Decode one raw message and send its records to their services' partitions."""
        records, rejects = self._decoder.decode_message(value, Origin(topic, partition, offset)) if value else ([], [])
        for rejected in rejects:
            self._dead_letter.put(rejected)
            self.metrics.records_rejected.labels(reason=rejected.reason).inc()
        groups = router.split(records)
        for target, payload in routed_messages(f"{topic}:{partition}:{offset}", groups, self.max_message_bytes):
            producer.send(self.records_topic, value=payload, partition=target)
            self.summary.messages_sent += 1
        for target, group in groups.items():
            self.metrics.records_routed.labels(partition=str(target)).inc(len(group))
        self.summary.messages_read += 1
        self.summary.records_routed += len(records)
        self.summary.records_rejected += len(rejects)
