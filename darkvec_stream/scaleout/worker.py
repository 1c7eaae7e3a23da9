"""The window worker: one consumer-group member that windows whole services.

A worker owns some partitions of the by-service topic and keeps one
``Windower`` per partition, with that partition's own watermark, so the
windows it closes do not depend on which instance owns which partition.
Each closed window becomes a part on the sentences topic, followed by a
progress marker. Offsets are committed only after the producer flushed,
and no further than the first record of a still-open window. The worker
neither trains nor applies the sender filter (the trainer does both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from darkvec_stream.errors import DarkvecError, StateError
from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.deadletter import DeadLetterSink
from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import encode_record
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.security import KafkaSecurity, masked
from darkvec_stream.scaleout.lifecycle import StopRequest
from darkvec_stream.scaleout.messages import Progress, encode_progress, encode_window, message_key
from darkvec_stream.scaleout.metrics import WorkerMetrics
from darkvec_stream.scaleout.routing import ServiceRouter
from darkvec_stream.windows import SenderFilter, Windower
from darkvec_stream.windows.model import ClosedWindow
from darkvec_stream.windows.services import ServiceMap

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]
ConsumerFactory = Callable[..., RecordConsumer]
# First line of a router message: "#source TOPIC:PARTITION:OFFSET:CHUNK".
SOURCE_PREFIX = b"#source "
_NS_PER_S = 1_000_000_000


def split_source(value: bytes) -> tuple[str | None, bytes]:
    """Split a router message into its source id and its record lines (None for other producers)."""
    if not value.startswith(SOURCE_PREFIX):
        return None, value
    header, _, body = value.partition(b"\n")
    return header[len(SOURCE_PREFIX):].decode("utf-8", "replace").strip(), body


@dataclass
class PartitionWindows:
    """The windowing state of one owned by-service partition.

    ``sources`` maps each open window to the router source ids whose
    records it received, so a copy of a source message that a restarted
    router produced again is dropped instead of being counted twice.
    """

    windower: Windower
    sources: dict[int, set[str]] = field(default_factory=dict)
    reported_through: int | None = None

    def closed_through(self) -> int | None:
        """Return the last window index the watermark has passed, or None before any record."""
        watermark_ns = self.windower.watermark_ns
        if watermark_ns is None:
            return None
        return watermark_ns // (self.windower.window_s * _NS_PER_S) - 1

    def drop_repeated_sources(self, source: str | None, records: list[Record]) -> tuple[list[Record], int]:
        """Return the records of a message not already received under ``source``, and how many were dropped."""
        if source is None:
            return records, 0
        window_ns = self.windower.window_s * _NS_PER_S
        windows = {record.ts_ns // window_ns for record in records}
        repeated = {index for index in windows if source in self.sources.get(index, ())}
        for index in windows:
            self.sources.setdefault(index, set()).add(source)
        if not repeated:
            return records, 0
        kept = [record for record in records if record.ts_ns // window_ns not in repeated]
        return kept, len(records) - len(kept)

    def forget_sources_through(self, index: int) -> None:
        for window in [window for window in self.sources if window <= index]:
            del self.sources[window]


@dataclass
class WorkerSummary:
    """Counts of one worker run."""

    records_read: int = 0
    records_rejected: int = 0
    records_duplicate: int = 0
    windows_emitted: int = 0
    messages_sent: int = 0


class WindowWorker:
    """Window the owned partitions of the by-service topic and publish each closed window's part.

    ``services`` builds one service map per partition (``domain`` or
    ``single`` only). ``max_future_s`` rejects records dated further than
    that past the wall clock, as the daemon does. Kafka clients come from
    ``consumer_factory`` and ``producer_factory`` so tests can wrap them.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        records_topic: str,
        sentences_topic: str,
        group_id: str,
        services: Callable[[], ServiceMap],
        dead_letter: DeadLetterSink,
        window_s: int = 3600,
        lateness_s: int = 300,
        max_future_s: int = 86400,
        max_message_bytes: int = 900_000,
        poll_timeout_ms: int = 500,
        max_poll_records: int = 500,
        consumer_options: dict[str, Any] | None = None,
        security: KafkaSecurity | None = None,
        metrics: WorkerMetrics | None = None,
        consumer_factory: ConsumerFactory = RecordConsumer,
        producer_factory: Callable[..., KafkaProducer] = KafkaProducer,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.records_topic = records_topic
        self.sentences_topic = sentences_topic
        self.group_id = group_id
        self.window_s = window_s
        self.lateness_s = lateness_s
        self.max_future_s = max_future_s
        self.max_message_bytes = max_message_bytes
        self.poll_timeout_ms = poll_timeout_ms
        self.max_poll_records = max_poll_records
        self.metrics = metrics or WorkerMetrics()
        self.summary = WorkerSummary()
        self._services = services
        self._dead_letter = dead_letter
        self._consumer_options = dict(consumer_options or {})
        self._security = security or KafkaSecurity()
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._wall_clock_ns = wall_clock_ns
        self._decoder = get_decoder("record-csv")
        self._partitions: dict[int, PartitionWindows] = {}
        self._committed: dict[PartitionKey, int] = {}
        self._router: ServiceRouter | None = None
        self._records_partitions = 0
        self._sentence_partitions: list[int] = []
        self._misrouted_logged = False
        # Windows are checked by building one partition state up front, so
        # invalid window or service settings fail before Kafka is touched.
        self._new_partition()

    # -- partitions --------------------------------------------------------

    def _new_partition(self) -> PartitionWindows:
        windower = Windower(
            window_s=self.window_s, lateness_s=self.lateness_s, services=self._services(),
            sender_filter=SenderFilter(min_packets=1), on_late=self._on_late,
        )
        return PartitionWindows(windower)

    def assign(self, keys: Sequence[PartitionKey]) -> None:
        """Start a fresh windower for each newly owned partition; it re-reads from the committed offset."""
        for _, partition in keys:
            if partition not in self._partitions:
                self._partitions[partition] = self._new_partition()
        logger.info("owning by-service partitions %s", sorted(self._partitions))
        self.metrics.partitions_owned.set(len(self._partitions))

    def revoke(self, keys: Sequence[PartitionKey]) -> None:
        """Drop the windows of partitions moved to another worker; it closes them from the committed offset."""
        for topic, partition in keys:
            state = self._partitions.pop(partition, None)
            self._committed.pop((topic, partition), None)
            if state is not None and state.windower.open_windows:
                logger.info("partition %s moved away with open windows %s; its new owner re-reads them",
                            partition, state.windower.open_windows)
        self.metrics.partitions_owned.set(len(self._partitions))

    @property
    def owned_partitions(self) -> list[int]:
        return sorted(self._partitions)

    # -- records -----------------------------------------------------------

    def handle(self, topic: str, partition: int, offset: int, value: bytes) -> list[ClosedWindow]:
        """Window one by-service message and return the windows of ``partition`` it closed."""
        state = self._partitions.get(partition)
        if state is None:
            logger.warning("message %s[%s]@%s from a partition this worker does not own: skipped",
                           topic, partition, offset)
            return []
        position = (topic, partition, offset)
        origin = Origin(topic, partition, offset)
        source, body = split_source(value)
        records, rejects = self._decoder.decode_message(body, origin) if body else ([], [])
        records, future = self._screen(records, origin)
        self._check_routing(partition, records)
        kept, repeated = state.drop_repeated_sources(source, records)
        self._count(len(records) + len(rejects), rejects + future, repeated)
        for rejected in rejects + future:
            self._dead_letter.put(rejected)
        closed = state.windower.add_many(kept, position)
        state.windower.mark_consumed(position)
        if closed:
            state.forget_sources_through(closed[-1].index)
        return closed

    def _screen(self, records: list[Record], origin: Origin) -> tuple[list[Record], list[Rejected]]:
        # A record dated far in the future would move the partition's
        # watermark and make every later record late.
        limit_ns = self._wall_clock_ns() + self.max_future_s * _NS_PER_S
        if not records or max(record.ts_ns for record in records) <= limit_ns:
            return records, []
        kept = [record for record in records if record.ts_ns <= limit_ns]
        rejected = [
            Rejected("bad_timestamp", f"event time {record.ts_ns} ns is more than max_future_s after the wall clock",
                     encode_record(record), origin)
            for record in records if record.ts_ns > limit_ns
        ]
        return kept, rejected

    def _check_routing(self, partition: int, records: list[Record]) -> None:
        if self._router is None:
            return
        misrouted = sum(1 for record in records if self._router.partition_of(record) != partition)
        if misrouted:
            # Still windowed: the trainer joins a service's pieces from
            # several partitions, but their sentence order is then by
            # partition, not by time.
            if not self._misrouted_logged:
                self._misrouted_logged = True
                logger.warning("partition %s contains records of services routed to other partitions: check that "
                               "%s is partitioned by service (counted in darkvec_worker_records_misrouted_total)",
                               partition, self.records_topic)
            self.metrics.records_misrouted.inc(misrouted)

    def _on_late(self, record: Record, position: tuple[str, int, int] | None) -> None:
        origin = Origin(position[0], position[1], position[2]) if position else Origin(self.records_topic)
        self._dead_letter.put(Rejected("late", f"event time {record.ts_ns} ns is below the partition's watermark",
                                       encode_record(record), origin))
        self.metrics.records_rejected.labels(reason="late").inc()

    def _count(self, read: int, rejects: list[Rejected], repeated: int) -> None:
        self.summary.records_read += read
        self.summary.records_rejected += len(rejects)
        self.summary.records_duplicate += repeated
        self.metrics.records_consumed.inc(read)
        self.metrics.records_duplicate.inc(repeated)
        for rejected in rejects:
            self.metrics.records_rejected.labels(reason=rejected.reason).inc()

    # -- output ------------------------------------------------------------

    def publish(self, producer: Any, closed: list[tuple[int, ClosedWindow]], touched: set[int], final: bool = False) -> None:
        """Send the parts of ``closed`` windows, then progress of ``touched`` partitions, then flush."""
        for partition, window in closed:
            for payload in encode_window(partition, self._records_partitions, window, self.max_message_bytes):
                self._send(producer, partition, window.index, payload)
            self.summary.windows_emitted += 1
            self.metrics.window_parts.inc()
            logger.info("partition %s window %s emitted: %s records, %s senders, %s sentences",
                        partition, window.index, window.records, window.senders_seen, len(window.sentences))
        for partition in sorted(touched):
            state = self._partitions.get(partition)
            if state is None:
                continue
            through = state.closed_through()
            if final or (through is not None and (state.reported_through is None or through > state.reported_through)):
                reported = through if through is not None else -1
                state.reported_through = reported
                progress = Progress(partition, self._records_partitions, reported, final)
                self._send(producer, partition, None, encode_progress(progress))
        producer.flush()
        self._dead_letter.flush()

    def _send(self, producer: Any, partition: int, window: int | None, payload: bytes) -> None:
        # All messages of one by-service partition go to one sentences
        # partition, so the trainer reads them in the order they were sent.
        target = self._sentence_partitions[partition % len(self._sentence_partitions)]
        producer.send(self.sentences_topic, value=payload, key=message_key(partition, window), partition=target)
        self.summary.messages_sent += 1
        self.metrics.messages_sent.inc()

    def commit(self, consumer: RecordConsumer) -> None:
        """Commit, per owned partition, the first offset that still feeds an open window."""
        offsets: dict[PartitionKey, int] = {}
        for state in self._partitions.values():
            for key, offset in state.windower.committable_offsets().items():
                if self._committed.get(key) != offset:
                    offsets[key] = offset
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except StateError as error:
            # The partitions moved: their new owner re-reads from the last
            # commit and the trainer drops the windows sent twice.
            logger.warning("commit skipped: %s", error)
            return
        self._committed.update(offsets)

    # -- loop --------------------------------------------------------------

    def run(self, stop: StopRequest, exit_when_idle_s: float | None = None, flush_at_exit: bool = False) -> WorkerSummary:
        """Consume until ``stop`` is set (or until idle and caught up, for finite inputs)."""
        options = {
            "bootstrap_servers": self.bootstrap_servers, "acks": "all", "linger_ms": 5, "retries": 5,
            "max_in_flight_requests_per_connection": 1, "max_request_size": self.max_message_bytes + 65_536,
            **self._security.client_options(),
        }
        logger.info("worker producing to %s with %s", self.sentences_topic, masked(options))
        try:
            producer = self._producer_factory(**options)
        except KafkaError as error:
            raise DarkvecError(f"cannot connect a producer to {self.bootstrap_servers}: {error}") from error
        try:
            self._read_topics(producer)
            consumer = self._consumer_factory(
                self.bootstrap_servers, [self.records_topic], self.group_id,
                on_revoked=self.revoke, security=self._security,
                max_poll_records=self.max_poll_records, **self._consumer_options,
            )
            with consumer:
                self._consume(consumer, producer, stop, exit_when_idle_s)
                if flush_at_exit and not stop:
                    self.flush(consumer, producer)
        except KafkaError as error:
            raise DarkvecError(f"Kafka at {self.bootstrap_servers} failed: {error}; the worker's "
                               "partitions resume from their last commit on another member or a restart") from error
        finally:
            producer.close(timeout=10)
            self._dead_letter.close()
        return self.summary

    def _read_topics(self, producer: Any) -> None:
        records = producer.partitions_for(self.records_topic)
        sentences = producer.partitions_for(self.sentences_topic)
        if not records or not sentences:
            raise DarkvecError(f"topics {self.records_topic!r} and {self.sentences_topic!r} must exist: create them "
                               "or enable auto-creation on the broker")
        self._records_partitions = len(records)
        self._sentence_partitions = sorted(sentences)
        services = self._services()
        self._router = ServiceRouter(services, self._records_partitions)

    def _consume(self, consumer: RecordConsumer, producer: Any, stop: StopRequest, exit_when_idle_s: float | None) -> None:
        idle_since = time.monotonic()
        while not stop:
            messages = consumer.poll_batch(self.poll_timeout_ms, self.max_poll_records)
            if not messages:
                self._reconcile(consumer)
                if exit_when_idle_s is not None and time.monotonic() - idle_since >= exit_when_idle_s:
                    if consumer.assignment() and not any(consumer.lag().values()):
                        logger.info("no records for %.1f s and no lag: stopping", exit_when_idle_s)
                        return
                    idle_since = time.monotonic()
                continue
            idle_since = time.monotonic()
            fresh = self._reconcile(consumer)
            closed: list[tuple[int, ClosedWindow]] = []
            touched: set[int] = set()
            for topic, partition, offset, value in messages:
                if partition in fresh:
                    continue
                closed.extend((partition, window) for window in self.handle(topic, partition, offset, value or b""))
                touched.add(partition)
            self.publish(producer, closed, touched)
            self.commit(consumer)

    def _reconcile(self, consumer: RecordConsumer) -> set[int]:
        """Match the windowers to the assignment; return the partitions that just started over.

        A newly owned partition must be windowed from its committed offset,
        which is the first record of a window its previous owner left open.
        This process may have read it further before, so the partition is
        sought back there and the messages this poll returned for it are
        skipped.
        """
        assigned = consumer.assignment()
        gone = [(topic, partition) for topic, partition in [(self.records_topic, p) for p in self._partitions]
                if (topic, partition) not in assigned]
        if gone:
            self.revoke(gone)
        new = [key for key in assigned if key[1] not in self._partitions]
        if not new:
            return set()
        committed = consumer.committed(new)
        consumer.seek_to({key: offset or 0 for key, offset in committed.items()})
        self.assign(new)
        return {partition for _, partition in new}

    def flush(self, consumer: RecordConsumer, producer: Any) -> None:
        """Close every open window of every owned partition and mark them ended (finite inputs)."""
        closed = [(partition, window) for partition, state in sorted(self._partitions.items())
                  for window in state.windower.flush()]
        self.publish(producer, closed, set(self._partitions), final=True)
        self.commit(consumer)
