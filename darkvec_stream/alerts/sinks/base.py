"""Buffered, retrying delivery shared by every alert sink.

A sink renders each alert once, keeps it in a bounded first-in-first-out
buffer and delivers from the front. When the destination fails, the sink
waits with exponential backoff (on an injectable monotonic clock) before the
next attempt, drops the oldest alerts once the buffer is full, and logs one
line per availability change rather than one per alert. Delivery is
synchronous: ``send``, ``poll`` and ``flush`` attempt it on the caller's
thread, and nothing happens between calls.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from stix2.exceptions import STIXError

from darkvec_stream.alerts.formats import RenderContext, get_renderer
from darkvec_stream.alerts.model import Alert
from darkvec_stream.errors import ConfigError, DarkvecError, StateError

logger = logging.getLogger(__name__)

#: Reasons under which a sink counts dropped alerts.
DROP_BUFFER_FULL = "buffer_full"
DROP_REJECTED = "rejected"
DROP_RENDER_FAILED = "render_failed"
DROP_UNDELIVERED_AT_CLOSE = "undelivered_at_close"
DROP_REASONS = (DROP_BUFFER_FULL, DROP_REJECTED, DROP_RENDER_FAILED, DROP_UNDELIVERED_AT_CLOSE)


class TransientDeliveryError(Exception):
    """The destination is unavailable now; the same payloads may succeed later.

    ``delivered`` counts the payloads at the front of the batch that the
    destination accepted before the failure.
    """

    def __init__(self, message: str, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class PermanentDeliveryError(Exception):
    """The destination rejected the payloads; resending them cannot succeed.

    ``delivered`` counts the payloads accepted before the rejected ones; the
    rest of the batch is dropped.
    """

    def __init__(self, message: str, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between delivery attempts after a failure, in seconds."""

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ConfigError(
                f"retry backoff {self.initial_backoff_s}..{self.max_backoff_s} s is invalid; "
                "use 0 < initial_backoff_s <= max_backoff_s"
            )
        if self.multiplier < 1:
            raise ConfigError(f"retry multiplier {self.multiplier} is invalid; use >= 1")

    def delay_s(self, consecutive_failures: int) -> float:
        """Return the wait after the n-th consecutive failure (n >= 1)."""
        exponent = min(consecutive_failures - 1, 64)
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**exponent)


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """One rendered alert waiting in a sink's buffer."""

    alert: Alert
    payload: bytes


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of one sink, read by the metrics stage."""

    name: str
    format: str
    delivered: int
    dropped: dict[str, int]
    buffered: int
    available: bool
    failed_attempts: int


class AlertSink(ABC):
    """Base class of every sink: render, buffer, deliver, back off, count.

    Subclasses implement ``_deliver`` (raise ``TransientDeliveryError`` or
    ``PermanentDeliveryError``) and may override ``_sync`` (make delivered
    payloads durable) and ``_disconnect`` (drop a broken connection).
    """

    def __init__(
        self,
        *,
        name: str,
        format: str,
        context: RenderContext | None = None,
        max_buffered: int = 10_000,
        max_batch: int = 100,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_buffered < 1:
            raise ConfigError(f"sink {name!r}: max_buffered {max_buffered} is invalid; use >= 1")
        if max_batch < 1:
            raise ConfigError(f"sink {name!r}: max_batch {max_batch} is invalid; use >= 1")
        self.name = name
        self.format = format
        self._render = get_renderer(format)
        self._context = context or RenderContext()
        self._max_buffered = max_buffered
        self._max_batch = max_batch
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._buffer: deque[PendingAlert] = deque()
        self._dropped: Counter[str] = Counter()
        self._delivered = 0
        self._failed_attempts = 0
        self._consecutive_failures = 0
        self._next_attempt_s = float("-inf")
        self._overflowing = False
        self._closed = False

    # -- public API -------------------------------------------------------

    def send(self, alert: Alert) -> None:
        """Render and buffer one alert, then deliver what is due."""
        if self._closed:
            raise StateError(f"alert sink {self.name!r} is closed; create a new sink")
        pending = self._render_pending(alert)
        if pending is not None:
            self._enqueue([pending])
        self.poll()

    def poll(self) -> None:
        """Deliver buffered alerts unless the sink waits out a backoff period."""
        while self._buffer and self._clock() >= self._next_attempt_s:
            if not self._attempt_batch():
                return

    def flush(self) -> None:
        """Deliver what is due, then make delivered alerts durable at the destination."""
        self.poll()
        if self.available:
            try:
                self._sync()
            except TransientDeliveryError as error:
                self._record_failure(error)

    def close(self) -> None:
        """Try one last delivery regardless of backoff, release resources, count leftovers."""
        if self._closed:
            return
        self._next_attempt_s = float("-inf")
        self.flush()
        leftover = len(self._buffer)
        if leftover:
            self._dropped[DROP_UNDELIVERED_AT_CLOSE] += leftover
            logger.error(
                "alert sink %s closed with %d undelivered alerts", self.name, leftover
            )
            self._buffer.clear()
        self._disconnect()
        self._closed = True

    def pending_alerts(self) -> list[Alert]:
        """Return the buffered, undelivered alerts, oldest first (for checkpoints)."""
        return [pending.alert for pending in self._buffer]

    def restore_pending(self, alerts: Iterable[Alert]) -> None:
        """Put alerts from a checkpoint back in the buffer without attempting delivery."""
        rendered = [self._render_pending(alert) for alert in alerts]
        self._enqueue([pending for pending in rendered if pending is not None])

    @property
    def available(self) -> bool:
        """False from a failed attempt until the next successful one."""
        return self._consecutive_failures == 0

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the sink's counters."""
        return SinkStats(
            name=self.name,
            format=self.format,
            delivered=self._delivered,
            dropped={reason: self._dropped[reason] for reason in DROP_REASONS},
            buffered=len(self._buffer),
            available=self.available,
            failed_attempts=self._failed_attempts,
        )

    # -- subclass hooks ---------------------------------------------------

    @abstractmethod
    def _deliver(self, batch: Sequence[PendingAlert]) -> None:
        """Deliver the whole batch in order or raise a delivery error."""

    def _sync(self) -> None:
        """Make delivered payloads durable; raise ``TransientDeliveryError`` on failure."""

    def _disconnect(self) -> None:
        """Release the connection or file so that the next attempt starts afresh."""

    # -- internals --------------------------------------------------------

    def _render_pending(self, alert: Alert) -> PendingAlert | None:
        try:
            return PendingAlert(alert, self._render(alert, self._context))
        except (DarkvecError, STIXError, ValueError, TypeError, KeyError) as error:
            self._dropped[DROP_RENDER_FAILED] += 1
            logger.error(
                "alert sink %s cannot render alert %s as %s, dropped it: %s",
                self.name, alert.alert_id, self.format, error,
            )
            return None

    def _enqueue(self, items: Sequence[PendingAlert]) -> None:
        self._buffer.extend(items)
        overflow = len(self._buffer) - self._max_buffered
        if overflow <= 0:
            return
        # The oldest alerts go first: the newest describe the current state.
        for _ in range(overflow):
            self._buffer.popleft()
        self._dropped[DROP_BUFFER_FULL] += overflow
        if not self._overflowing:
            self._overflowing = True
            logger.warning(
                "alert sink %s buffer is full (%d alerts); dropping the oldest until it drains",
                self.name, self._max_buffered,
            )

    def _attempt_batch(self) -> bool:
        """Deliver one batch from the front; return False when delivery must pause."""
        batch = [self._buffer[index] for index in range(min(self._max_batch, len(self._buffer)))]
        try:
            self._deliver(batch)
        except TransientDeliveryError as error:
            self._remove_delivered(error.delivered)
            self._record_failure(error)
            return False
        except PermanentDeliveryError as error:
            self._remove_delivered(error.delivered)
            rejected = len(batch) - error.delivered
            for _ in range(rejected):
                self._buffer.popleft()
            self._dropped[DROP_REJECTED] += rejected
            logger.error(
                "alert sink %s: destination rejected %d alerts, dropped them: %s",
                self.name, rejected, error,
            )
            self._record_success()
            return True
        self._remove_delivered(len(batch))
        self._record_success()
        return True

    def _remove_delivered(self, count: int) -> None:
        for _ in range(count):
            self._buffer.popleft()
        self._delivered += count
        if self._overflowing and len(self._buffer) < self._max_buffered:
            self._overflowing = False
            logger.info(
                "alert sink %s buffer has room again; %d alerts dropped while full so far",
                self.name, self._dropped[DROP_BUFFER_FULL],
            )

    def _record_failure(self, error: Exception) -> None:
        self._failed_attempts += 1
        self._consecutive_failures += 1
        delay_s = self._retry.delay_s(self._consecutive_failures)
        self._next_attempt_s = self._clock() + delay_s
        self._disconnect()
        if self._consecutive_failures == 1:
            logger.warning(
                "alert sink %s is unavailable, buffering %d alerts and retrying with backoff: %s",
                self.name, len(self._buffer), error,
            )
        else:
            logger.debug(
                "alert sink %s retry %d failed, next in %.1f s: %s",
                self.name, self._consecutive_failures, delay_s, error,
            )

    def _record_success(self) -> None:
        if self._consecutive_failures:
            logger.info(
                "alert sink %s recovered after %d failed attempts; %d alerts still buffered",
                self.name, self._consecutive_failures, len(self._buffer),
            )
        self._consecutive_failures = 0
        self._next_attempt_s = float("-inf")
