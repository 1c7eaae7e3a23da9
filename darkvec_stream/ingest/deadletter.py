"""Dead-letter sinks that keep every rejected record, and a count by reason.

A sink buffers rejects in memory up to a bound and writes them in batches.
When a write fails, it retries later with exponential backoff instead of
blocking the caller. When the buffer is full, new rejects are dropped and
counted. Delivery is at least once: a batch that failed half-way is
written again whole. This module does not decide what is rejected.
"""

from __future__ import annotations

import base64
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Protocol

import orjson

from darkvec_stream.errors import InputError
from darkvec_stream.ingest.record import Origin, Rejected

logger = logging.getLogger(__name__)

# The maximum number of raw bytes a dead-letter entry keeps: enough to see what a record
# looked like, while one huge broken record cannot fill the disk.
RAW_MAX_BYTES = 4096


class DeadLetterSink(Protocol):
    """Where rejected records go; ``put`` never raises for a sink failure."""

    def put(self, rejected: Rejected) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class RejectCounter:
    """Count of rejected records by reason, read by the metrics stage."""

    def __init__(self) -> None:
        self._by_reason: Counter[str] = Counter()

    def add(self, rejected: Rejected) -> None:
        """Count one reject."""
        self._by_reason[rejected.reason] += 1

    def add_all(self, rejects: Iterable[Rejected]) -> None:
        """Count every reject of a batch."""
        self._by_reason.update(rejected.reason for rejected in rejects)

    def count(self, reason: str) -> int:
        """Return the number of rejects with ``reason`` so far."""
        return self._by_reason[reason]

    @property
    def total(self) -> int:
        """Number of rejects counted, all reasons together."""
        return sum(self._by_reason.values())

    def by_reason(self) -> dict[str, int]:
        """Return a copy of the counts, keyed by reason."""
        return dict(self._by_reason)


def rejected_to_json(rejected: Rejected) -> dict[str, Any]:
    """Return the JSON object written for a reject.

    ``raw`` is the text when it is valid UTF-8 and base64 otherwise, with
    ``raw_encoding`` saying which. Only the first ``RAW_MAX_BYTES`` bytes
    are kept: ``raw_bytes`` is the length of the whole raw value and
    ``raw_truncated`` tells whether it was cut.
    """
    raw_bytes = len(rejected.raw)
    kept = rejected.raw[:RAW_MAX_BYTES]
    raw, encoding = _raw_text(kept, cut=raw_bytes > RAW_MAX_BYTES)
    origin = rejected.origin
    return {
        "reason": rejected.reason,
        "detail": rejected.detail,
        "source": origin.source,
        "partition": origin.partition,
        "offset": origin.offset,
        "line": origin.line,
        "raw": raw,
        "raw_encoding": encoding,
        "raw_bytes": raw_bytes,
        "raw_truncated": raw_bytes > RAW_MAX_BYTES,
    }


def _raw_text(raw: bytes, cut: bool) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        # The cut may split the last character; drop its first bytes rather
        # than turning a readable line into base64.
        if cut and error.reason == "unexpected end of data":
            return raw[:error.start].decode("utf-8"), "utf-8"
        return base64.b64encode(raw).decode("ascii"), "base64"


def rejected_from_json(document: dict[str, Any]) -> Rejected:
    """Rebuild a reject from the object that ``rejected_to_json`` wrote."""
    encoding = document["raw_encoding"]
    if encoding == "utf-8":
        raw = document["raw"].encode("utf-8")
    elif encoding == "base64":
        raw = base64.b64decode(document["raw"])
    else:
        raise InputError(f"invalid raw_encoding {encoding!r} in a dead-letter entry; expected utf-8 or base64")
    origin = Origin(document["source"], document["partition"], document["offset"], document["line"])
    return Rejected(document["reason"], document["detail"], raw, origin)


def read_jsonl(path: Path) -> list[Rejected]:
    """Read back every reject that ``JsonlDeadLetter`` wrote to ``path``."""
    with open(path, "rb") as handle:
        return [rejected_from_json(orjson.loads(line)) for line in handle if line.strip()]


class BufferedSink(ABC):
    """Bounded buffer, batched writes and non-blocking retry with backoff.

    ``put`` writes a batch once ``batch_size`` rejects are buffered. After a
    failed write the next attempt waits ``backoff_initial_s``, doubling up
    to ``backoff_max_s``. Rejects arriving while ``max_buffered`` are
    waiting are dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        *,
        max_buffered: int = 10_000,
        batch_size: int = 500,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_buffered < 1 or batch_size < 1:
            raise ValueError(f"max_buffered and batch_size must be at least 1, got {max_buffered}, {batch_size}")
        self.max_buffered = max_buffered
        self.batch_size = batch_size
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._buffer: list[Rejected] = []
        self._failures = 0
        self._retry_at = float("-inf")
        self.written = 0
        self.dropped = 0

    @property
    def buffered(self) -> int:
        """Number of rejects waiting to be written."""
        return len(self._buffer)

    def put(self, rejected: Rejected) -> None:
        if len(self._buffer) >= self.max_buffered:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("dead-letter buffer for %s full (%d waiting); %d rejects dropped so far",
                             self.target, len(self._buffer), self.dropped)
            return
        self._buffer.append(rejected)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rejects unless a retry is not due yet."""
        if self._buffer and self._clock() >= self._retry_at:
            self._attempt()

    def close(self) -> None:
        """Make one last write attempt, count what is left as dropped, release the target."""
        if self._buffer:
            self._attempt()
        if self._buffer:
            logger.error("closing dead-letter sink %s with %d rejects unwritten; counted as dropped",
                         self.target, len(self._buffer))
            self.dropped += len(self._buffer)
            self._buffer.clear()
        self._release()

    def _attempt(self) -> None:
        batch = self._buffer[:]
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - any sink failure must not stop ingestion
            self._failures += 1
            delay_s = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (self._failures - 1))
            self._retry_at = self._clock() + delay_s
            logger.warning("dead-letter write of %d rejects to %s failed (attempt %d): %s; retrying in %.1f s",
                           len(batch), self.target, self._failures, error, delay_s)
            return
        del self._buffer[:len(batch)]
        self.written += len(batch)
        self._failures = 0
        self._retry_at = float("-inf")

    @property
    @abstractmethod
    def target(self) -> str:
        """Return the sink's destination (a path or a topic), for log lines."""

    @abstractmethod
    def _write(self, batch: list[Rejected]) -> None:
        """Write a whole batch or raise."""

    def _release(self) -> None:
        """Release files or clients the sink owns."""


class JsonlDeadLetter(BufferedSink):
    """Append rejects to a JSON lines file, one object per reject."""

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path)
        self._handle: IO[bytes] | None = None

    @property
    def target(self) -> str:
        return str(self.path)

    def _write(self, batch: list[Rejected]) -> None:
        if self._handle is None:
            self._handle = open(self.path, "ab")
        lines = b"".join(orjson.dumps(rejected_to_json(rejected)) + b"\n" for rejected in batch)
        self._handle.write(lines)
        self._handle.flush()

    def _release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class KafkaSendTarget(Protocol):
    """The part of kafka-python's ``KafkaProducer`` that the sink uses."""

    def send(self, topic: str, value: bytes | None = ..., key: bytes | None = ...) -> Any: ...

    def flush(self, timeout: float | None = ...) -> None: ...


class KafkaDeadLetter(BufferedSink):
    """Produce rejects as JSON messages to a Kafka topic, keyed by reason.

    The producer belongs to the caller, who closes it; ``flush_timeout_s``
    bounds each batch's wait for acknowledgements.
    """

    def __init__(self, producer: KafkaSendTarget, topic: str, *, flush_timeout_s: float = 10.0,
                 **options: Any) -> None:
        super().__init__(**options)
        if not topic:
            raise ValueError("dead-letter topic must be a non-empty name")
        self.producer = producer
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s

    @property
    def target(self) -> str:
        return f"topic {self.topic}"

    def _write(self, batch: list[Rejected]) -> None:
        futures = [
            self.producer.send(self.topic, value=orjson.dumps(rejected_to_json(rejected)),
                               key=rejected.reason.encode("ascii"))
            for rejected in batch
        ]
        self.producer.flush(timeout=self.flush_timeout_s)
        for future in futures:
            # kafka-python futures report a failed delivery here, not in send().
            if getattr(future, "failed", None) is not None and future.failed():
                raise future.exception
