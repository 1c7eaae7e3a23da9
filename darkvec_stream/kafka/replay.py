"""Replay capture files into a Kafka topic in event-time order, optionally paced.

Records are read with the ingest decoders, merged across files by event
time, encoded in the record-csv wire format and sent as batches of
newline-separated records per message. This module does not consume
anything and does not window anything.

Memory: a file whose records are already in event-time order is streamed
(one decode pass to check the order, one to send). A file out of order is
decoded into memory and sorted, which costs about the size of its ``Record``
tuples (measured in docs/benchmarks/kafka.md).
"""

from __future__ import annotations

import heapq
import logging
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kafka import KafkaProducer
from kafka.errors import KafkaError

from darkvec_stream.errors import ConfigError, DarkvecError, InputError
from darkvec_stream.ingest.record import Record, Rejected
from darkvec_stream.kafka.security import KafkaSecurity, masked

if TYPE_CHECKING:
    from darkvec_stream.scaleout.routing import ServiceRouter
    from darkvec_stream.windows.services import ServiceMap

logger = logging.getLogger(__name__)

Partitioning = Literal["single", "source-hash", "service"]
PARTITIONINGS = ("single", "source-hash", "service")
# Chosen by measurement (docs/benchmarks/kafka.md): 1000 records per message
# is past the point where the producer's per-message cost stops mattering.
DEFAULT_BATCH_RECORDS = 1000
# Below kafka-python's default max_request_size (1 MiB), so one message always fits.
MAX_MESSAGE_BYTES = 900_000
NS_PER_S = 1_000_000_000


@dataclass
class ReplaySummary:
    """Counts, reject reasons, event-time span and speed of one replay."""

    records: int = 0
    messages: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    wall_s: float = 0.0
    sorted_in_memory: list[str] = field(default_factory=list)

    @property
    def event_span_s(self) -> float:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0.0
        return (self.last_ts_ns - self.first_ts_ns) / NS_PER_S

    def render(self) -> str:
        """Format the summary as the lines printed at the end of ``replay``."""
        rate = self.records / self.wall_s if self.wall_s > 0 else 0.0
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(self.rejects.items())) or "none"
        lines = [
            f"records sent: {self.records} in {self.messages} messages",
            f"rejects: {sum(self.rejects.values())} ({reasons})",
            f"event time: {_iso(self.first_ts_ns)} .. {_iso(self.last_ts_ns)} ({self.event_span_s:.1f} s)",
            f"wall time: {self.wall_s:.2f} s ({rate:.0f} records/s)",
        ]
        if self.sorted_in_memory:
            lines.append(f"sorted in memory (not in event-time order on disk): {', '.join(self.sorted_in_memory)}")
        return "\n".join(lines)


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // NS_PER_S))


# -- reading in event-time order ------------------------------------------------


def _read(path: Path, format: str, options: Mapping[str, Any]) -> Iterator[tuple[list[Record], list[Rejected]]]:
    # Batches, not read_file: replay only counts rejects, so it does not need
    # them interleaved with records, and lists are faster to walk.
    from darkvec_stream.ingest import read_batches

    batches: Iterator[tuple[list[Record], list[Rejected]]] = read_batches(path, format, **options)
    return batches


def _is_ordered(path: Path, format: str, options: Mapping[str, Any]) -> bool:
    previous = -1
    for records, _ in _read(path, format, options):
        for record in records:
            if record.ts_ns < previous:
                return False
            previous = record.ts_ns
    return True


def _file_records(
    path: Path, format: str, options: Mapping[str, Any], summary: ReplaySummary, rejected: Callable[[Rejected], None]
) -> Iterator[Record]:
    if _is_ordered(path, format, options):
        for records, rejects in _read(path, format, options):
            for item in rejects:
                rejected(item)
            yield from records
        return

    logger.info("%s is not in event-time order: sorting its records in memory", path)
    summary.sorted_in_memory.append(str(path))
    all_records: list[Record] = []
    for records, rejects in _read(path, format, options):
        for item in rejects:
            rejected(item)
        all_records.extend(records)
    # A stable sort keeps file order among records with the same timestamp.
    all_records.sort(key=_event_time)
    yield from all_records


def _event_time(record: Record) -> int:
    return record.ts_ns


def ordered_records(
    paths: Sequence[Path],
    format: str,
    decoder_options: Mapping[str, Any] | None = None,
    summary: ReplaySummary | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
) -> Iterator[Record]:
    """Yield the records of all ``paths`` merged in event-time order.

    Ties keep the order of ``paths`` and then file order. Rejects are
    counted by reason in ``summary`` and passed to ``on_reject``.
    """
    options = dict(decoder_options or {})
    summary = summary if summary is not None else ReplaySummary()

    def rejected(item: Rejected) -> None:
        summary.rejects[item.reason] += 1
        if on_reject is not None:
            on_reject(item)

    streams = [_file_records(Path(path), format, options, summary, rejected) for path in paths]
    yield from heapq.merge(*streams, key=_event_time)


# -- pacing ----------------------------------------------------------------------


class Pacer:
    """When each record is due: at event pace times ``speedup``, at most ``max_rate``, or now.

    ``due_s`` returns a time on the ``clock`` scale; the replay sleeps until
    then before sending the record.
    """

    def __init__(
        self,
        speedup: float | None = None,
        max_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speedup is not None and max_rate is not None:
            raise ConfigError("--speedup and --max-rate exclude each other: give at most one")
        if speedup is not None and not speedup > 0:
            raise ConfigError(f"--speedup {speedup} is invalid: use a positive factor (1 = real time)")
        if max_rate is not None and not max_rate > 0:
            raise ConfigError(f"--max-rate {max_rate} is invalid: use a positive number of records per second")
        self.speedup = speedup
        self.max_rate = max_rate
        self._clock = clock
        self._start_s: float | None = None
        self._first_ts_ns = 0
        self._count = 0

    @property
    def paced(self) -> bool:
        return self.speedup is not None or self.max_rate is not None

    def due_s(self, record: Record) -> float:
        """Return the clock time at which ``record`` may be sent."""
        if self._start_s is None:
            self._start_s = self._clock()
            self._first_ts_ns = record.ts_ns
        self._count += 1
        if self.speedup is not None:
            return self._start_s + (record.ts_ns - self._first_ts_ns) / NS_PER_S / self.speedup
        if self.max_rate is not None:
            return self._start_s + (self._count - 1) / self.max_rate
        return self._start_s


# -- producing --------------------------------------------------------------------


class _Batcher:
    """Collects encoded records per partition and sends them as one message each."""

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        batch_records: int,
        summary: ReplaySummary,
    ) -> None:
        from darkvec_stream.ingest.wire import encode_line

        self._encode = encode_line
        self._producer = producer
        self._topic = topic
        self._batch_records = batch_records
        self._summary = summary
        self._lines: dict[int, list[str]] = {}
        self._bytes: dict[int, int] = {}

    def add(self, record: Record, partition: int) -> int:
        """Queue one record; return how many records this call sent."""
        line = self._encode(record)
        lines = self._lines.setdefault(partition, [])
        size = self._bytes.get(partition, 0) + len(line) + 1
        if lines and size > MAX_MESSAGE_BYTES:
            self._send(partition)
            lines = self._lines.setdefault(partition, [])
            size = len(line) + 1
        lines.append(line)
        self._bytes[partition] = size
        if len(lines) >= self._batch_records:
            return self._send(partition)
        return 0

    def flush(self) -> int:
        """Send every queued record; return how many were sent."""
        return sum(self._send(partition) for partition in list(self._lines))

    def _send(self, partition: int) -> int:
        lines = self._lines.pop(partition, [])
        self._bytes.pop(partition, None)
        if not lines:
            return 0
        payload = "\n".join(lines).encode("utf-8")
        self._producer.send(self._topic, value=payload, partition=partition)
        self._summary.messages += 1
        return len(lines)


def _partition_for(
    record: Record, partitioning: Partitioning, partition: int, partition_count: int,
    router: "ServiceRouter | None" = None,
) -> int:
    if partitioning == "single":
        return partition
    if router is not None:
        return router.partition_of(record)
    # crc32, not hash(), so a sender lands on the same partition in every run.
    return zlib.crc32(record.src.encode("utf-8")) % partition_count


def _validate(topic: str, batch_records: int, partitioning: str, partition: int) -> None:
    if not topic:
        raise ConfigError("replay topic is empty: give --topic NAME")
    if batch_records < 1:
        raise ConfigError(f"--batch-records {batch_records} is invalid: use 1 or more records per message")
    if partitioning not in PARTITIONINGS:
        raise ConfigError(f"--partitioning {partitioning!r} is invalid: use one of {', '.join(PARTITIONINGS)}")
    if partition < 0:
        raise ConfigError(f"--partition {partition} is invalid: use a partition number from 0")


def replay(
    paths: Sequence[Path | str],
    topic: str,
    bootstrap_servers: str,
    format: str = "record-csv",
    decoder_options: Mapping[str, Any] | None = None,
    speedup: float | None = None,
    max_rate: float | None = None,
    batch_records: int = DEFAULT_BATCH_RECORDS,
    partitioning: Partitioning = "single",
    partition: int = 0,
    security: KafkaSecurity | None = None,
    progress: bool = False,
    services: "ServiceMap | None" = None,
    producer_factory: Callable[..., KafkaProducer] = KafkaProducer,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Send the records of ``paths`` to ``topic`` in event-time order and return a summary.

    ``partitioning="single"`` sends everything to ``partition`` so that the
    topic's order is the event-time order. ``"source-hash"`` spreads senders
    over all partitions by a CRC32 of the source address. Each partition is
    then in event-time order, but a consumer may read one partition ahead of
    another, so the windows' lateness must cover that skew. ``"service"``
    sends each record to the partition of its service under ``services``
    (``domain`` or ``single`` mode), as ``darkvec-stream route`` does, for
    the scale-out window workers.
    """
    _validate(topic, batch_records, partitioning, partition)
    if partitioning == "service" and services is None:
        raise ConfigError("--partitioning service needs the service map: pass services (services.mode domain)")
    pacer = Pacer(speedup, max_rate, clock)
    resolved = [Path(path) for path in paths]
    for path in resolved:
        if not path.is_file():
            raise InputError(f"replay input {str(path)!r} is not found or not a file")

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "linger_ms": 5,
        "retries": 5,
        **(security or KafkaSecurity()).client_options(),
    }
    logger.info("replaying %s file(s) to topic %s with %s", len(resolved), topic, masked(options))
    summary = ReplaySummary()
    started_s = clock()
    try:
        producer = producer_factory(**options)
    except KafkaError as error:
        raise DarkvecError(f"cannot connect a producer to {bootstrap_servers}: {error}") from error
    try:
        partition_count = _partition_count(producer, topic, partition, partitioning)
        records = ordered_records(resolved, format, decoder_options, summary)
        router = _service_router(services, partition_count) if partitioning == "service" else None
        _send_all(records, producer, topic, batch_records, partitioning, partition, partition_count,
                  pacer, summary, progress, clock, sleep, router)
        producer.flush()
    except KafkaError as error:
        raise DarkvecError(f"replay to topic {topic!r} on {bootstrap_servers} failed: {error}") from error
    finally:
        producer.close(timeout=10)
    summary.wall_s = clock() - started_s
    logger.info("replay finished: %s records, %s messages", summary.records, summary.messages)
    return summary


def _service_router(services: "ServiceMap | None", partition_count: int) -> "ServiceRouter":
    from darkvec_stream.scaleout.routing import ServiceRouter

    assert services is not None  # checked by replay() before connecting
    return ServiceRouter(services, partition_count)


def _partition_count(producer: KafkaProducer, topic: str, partition: int, partitioning: str) -> int:
    partitions = producer.partitions_for(topic)
    if not partitions:
        raise InputError(f"topic {topic!r} has no partitions: create it or enable auto-creation on the broker")
    if partitioning == "single" and partition not in partitions:
        raise ConfigError(
            f"--partition {partition} does not exist in topic {topic!r}: it has partitions {sorted(partitions)}"
        )
    return len(partitions)


def _send_all(
    records: Iterable[Record],
    producer: KafkaProducer,
    topic: str,
    batch_records: int,
    partitioning: Partitioning,
    partition: int,
    partition_count: int,
    pacer: Pacer,
    summary: ReplaySummary,
    progress: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    router: "ServiceRouter | None" = None,
) -> None:
    from tqdm import tqdm

    batcher = _Batcher(producer, topic, batch_records, summary)
    bar = tqdm(unit="rec", unit_scale=True, file=sys.stderr, disable=not progress, desc=topic)
    try:
        for record in records:

            # 1. Wait for the record's due time, sending what is queued first
            #    so no record is held back past its own due time.
            if pacer.paced:
                delay_s = pacer.due_s(record) - clock()
                if delay_s > 0:
                    bar.update(batcher.flush())
                    sleep(delay_s)

            # 2. Queue it; a full batch goes out as one message.
            target = _partition_for(record, partitioning, partition, partition_count, router)
            bar.update(batcher.add(record, target))
            summary.records += 1
            if summary.first_ts_ns is None:
                summary.first_ts_ns = record.ts_ns
            summary.last_ts_ns = record.ts_ns

        bar.update(batcher.flush())
    finally:
        bar.close()
