"""Consume raw messages from Kafka with explicit commits, checkpoint seeks and lag.

``RecordConsumer`` wraps kafka-python's ``KafkaConsumer`` so that offsets
move only when the caller says so, a broker outage is waited out with
exponential backoff, and every message is delivered once per process even
across rebalances. It does not decode payloads (``KafkaRecordSource`` does,
with the ingest decoders) and it never commits on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from darkvec_stream.errors import ConfigError, InputError, StateError
from darkvec_stream.kafka.security import KafkaSecurity, masked

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]
Message = tuple[str, int, int, bytes]
Assignment = Literal["group", "manual"]
OffsetReset = Literal["earliest", "latest"]
PartitionCallback = Callable[[list[PartitionKey]], None]

# Defaults chosen by measurement against Tansu (see docs/kafka.md). The
# broker delays its JoinGroup response by about half of session_timeout_ms,
# so a short session keeps joins to a few seconds.
DEFAULT_SESSION_TIMEOUT_MS = 6000
DEFAULT_HEARTBEAT_INTERVAL_MS = 1000
DEFAULT_MAX_POLL_INTERVAL_MS = 300_000
DEFAULT_MAX_POLL_RECORDS = 500


class RecordConsumer:
    """A Kafka consumer that commits only the offsets its caller hands it.

    ``assignment="group"`` joins consumer group ``group_id``, so partitions
    can move to another member, which suits a standby instance.
    ``assignment="manual"`` takes every partition of the topics with
    ``assign()``: it starts in milliseconds and never rebalances, and commits
    still go to ``group_id``. Offsets are "next offset to read", as
    in Kafka. Use it as a context manager or call ``start()``/``close()``.

    >>> with RecordConsumer("127.0.0.1:9092", ["records"]) as consumer:  # doctest: +SKIP
    ...     for topic, partition, offset, value in consumer.poll_batch(500, 100):
    ...         handle(value)
    ...     consumer.commit({("records", 0): offset + 1})
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str = "darkvec-stream",
        *,
        client_id: str = "darkvec-stream",
        assignment: Assignment = "group",
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms: int = DEFAULT_MAX_POLL_INTERVAL_MS,
        max_poll_records: int = DEFAULT_MAX_POLL_RECORDS,
        group_instance_id: str | None = None,
        retry_backoff_initial_ms: int = 500,
        retry_backoff_max_ms: int = 30_000,
        commit_timeout_s: float = 300.0,
        health_check_interval_s: float = 5.0,
        metadata_timeout_s: float = 30.0,
        security: KafkaSecurity | None = None,
        on_assigned: PartitionCallback | None = None,
        on_revoked: PartitionCallback | None = None,
        consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _validate_settings(
            bootstrap_servers, topics, group_id, assignment, auto_offset_reset,
            session_timeout_ms, heartbeat_interval_ms, max_poll_interval_ms, max_poll_records,
            retry_backoff_initial_ms, retry_backoff_max_ms, commit_timeout_s, health_check_interval_s,
        )
        self.topics = tuple(topics)
        self.group_id = group_id
        self.assignment_mode = assignment
        self.max_poll_records = max_poll_records
        self.retry_backoff_initial_ms = retry_backoff_initial_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.commit_timeout_s = commit_timeout_s
        self.health_check_interval_s = health_check_interval_s
        self.metadata_timeout_s = metadata_timeout_s
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._consumer_factory = consumer_factory
        self._sleep = sleep
        self._client_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "group_id": group_id,
            "group_instance_id": group_instance_id,
            "auto_offset_reset": auto_offset_reset,
            "enable_auto_commit": False,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "max_poll_records": max_poll_records,
            "reconnect_backoff_ms": retry_backoff_initial_ms,
            "reconnect_backoff_max_ms": retry_backoff_max_ms,
            **(security or KafkaSecurity()).client_options(),
        }
        self._consumer: KafkaConsumer | None = None
        self._positions: dict[PartitionKey, int] = {}
        self._pending_seeks: dict[PartitionKey, int] = {}
        self._resume_checks: set[PartitionKey] = set()
        self._unlogged: set[PartitionKey] = set()
        self._last_lag: dict[PartitionKey, int] = {}
        self._failures = 0
        self._first_offsets: dict[PartitionKey, int] = {}
        self._last_health_check = time.monotonic()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> RecordConsumer:
        """Connect, then join the group or assign every partition of the topics."""
        if self._consumer is not None:
            return self
        logger.info("starting Kafka consumer with %s", masked(self._client_options))
        self._consumer = self._consumer_factory(**self._client_options)
        if self.assignment_mode == "group":
            self._consumer.subscribe(list(self.topics), listener=_Listener(self))
        else:
            partitions = self._all_partitions()
            self._consumer.assign(partitions)
            self._mark_assigned([(tp.topic, tp.partition) for tp in partitions])
        return self

    def close(self) -> None:
        """Leave the group and close connections without committing anything."""
        if self._consumer is None:
            return
        try:
            self._consumer.close(autocommit=False)
        except KafkaError as error:
            logger.warning("closing the Kafka consumer failed: %s", error)
        self._consumer = None
        logger.info("Kafka consumer for topics %s closed", ",".join(self.topics))

    def __enter__(self) -> RecordConsumer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------

    def poll_batch(self, timeout_ms: int = 500, max_records: int | None = None) -> list[Message]:
        """Fetch at most ``max_records`` messages, waiting at most ``timeout_ms``.

        Returns ``(topic, partition, offset, value)`` tuples, in offset order
        within each partition. A Kafka error is logged and retried on the next
        call after a backoff, so the caller just keeps polling. When polls stay
        empty for ``health_check_interval_s``, one end-offset request checks
        that the broker still responds. While it does not, each call logs the
        failed attempt and sleeps an exponential backoff. Keep the work
        between two calls under ``max_poll_interval_ms`` (default 5 min), or
        the group evicts this consumer and reassigns its partitions.
        """
        consumer = self._require_started()
        limit = max_records or self.max_poll_records
        try:
            if self._resume_checks:
                self._check_resumed()
            batches = consumer.poll(timeout_ms=timeout_ms, max_records=limit)
        except KafkaError as error:
            self._back_off("poll", error)
            return []
        messages = self._accept(batches)
        if self._unlogged:
            self._log_starting_offsets()
        if messages:
            self._last_health_check = time.monotonic()
            self._note_recovered("poll")
        elif self._failures or time.monotonic() - self._last_health_check >= self.health_check_interval_s:
            self._check_health()
        return messages

    def positions(self) -> dict[PartitionKey, int]:
        """Next offset to read per partition, for partitions this consumer has read or sought."""
        return dict(self._positions)

    def assignment(self) -> list[PartitionKey]:
        """Return the partitions currently assigned to this consumer, sorted."""
        consumer = self._require_started()
        return sorted((tp.topic, tp.partition) for tp in consumer.assignment())

    # -- offsets -----------------------------------------------------------

    def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Commit exactly ``offsets`` (next offset to read per partition) to the group.

        Retries with exponential backoff while the broker is unavailable, up
        to ``commit_timeout_s``, then raises StateError. A commit rejected
        because the partition moved to another group member raises StateError
        at once, because retrying cannot fix it.
        """
        if not offsets:
            return
        consumer = self._require_started()
        request = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in _checked_offsets(offsets).items()
        }
        deadline = time.monotonic() + self.commit_timeout_s
        while True:
            try:
                consumer.commit(request, timeout_ms=self._commit_attempt_timeout_ms(deadline))
            except CommitFailedError as error:
                raise StateError(
                    f"commit of {_describe(offsets)} for group {self.group_id!r} was rejected because "
                    f"the group rebalanced ({error}); the new owner resumes from the last commit"
                ) from error
            except KafkaError as error:
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"commit of {_describe(offsets)} for group {self.group_id!r} failed for "
                        f"{self.commit_timeout_s} s ({error}); check that the broker is reachable"
                    ) from error
                self._back_off("commit", error)
                continue
            self._note_recovered("commit")
            logger.debug("committed %s for group %s", _describe(offsets), self.group_id)
            return

    def _commit_attempt_timeout_ms(self, deadline: float) -> int:
        # A bounded attempt, so an outage surfaces as a logged retry instead
        # of one commit call blocking silently until the broker returns.
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        return max(100, min(5000, remaining_ms))

    def committed(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, int | None]:
        """Return the group's committed offset per partition (None if never committed)."""
        consumer = self._require_started()
        result: dict[PartitionKey, int | None] = {}
        for topic, partition in partitions:
            result[(topic, partition)] = consumer.committed(TopicPartition(topic, partition))
        return result

    def seek_to(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Resume each partition at the given next offset, for example from a checkpoint.

        Partitions not assigned yet (the group join happens inside the first
        polls) are sought as soon as they are assigned.
        """
        consumer = self._require_started()
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        for key, offset in _checked_offsets(offsets).items():
            if key in assigned:
                self._seek(key, offset)
            else:
                self._pending_seeks[key] = offset
                logger.info("seek of %s[%s] to offset %s waits for its assignment", key[0], key[1], offset)

    def lag(self, timeout_ms: int = 5000) -> dict[PartitionKey, int]:
        """Messages between this consumer's position and the end, per assigned partition.

        During a broker outage the last known lag is returned and the error logged.
        """
        try:
            return self._read_lag(timeout_ms)
        except KafkaError as error:
            logger.warning("reading consumer lag failed, reporting the last known lag: %s", error)
            return dict(self._last_lag)

    def _read_lag(self, timeout_ms: int) -> dict[PartitionKey, int]:
        consumer = self._require_started()
        partitions = list(consumer.assignment())
        if not partitions:
            return {}
        end_offsets = consumer.end_offsets(partitions, timeout_ms=timeout_ms)
        lag = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            position = self._positions.get(key)
            if position is None:
                position = consumer.position(tp, timeout_ms=timeout_ms)
            # The high watermark of the last fetch response is an end offset
            # too. Take the larger, because Tansu 0.6.0 returns the last
            # batch's base offset + 1 for ListOffsets, short of the real end.
            end_offset = max(end_offsets[tp], consumer.highwater(tp) or 0)
            lag[key] = max(0, end_offset - (position or 0))
        self._last_lag = lag
        return lag

    def _check_health(self) -> None:
        self._last_health_check = time.monotonic()
        try:
            self._read_lag(timeout_ms=2000)
        except KafkaError as error:
            self._back_off("broker health check", error)
            return
        self._note_recovered("broker health check")

    # -- internals ---------------------------------------------------------

    def _accept(self, batches: Mapping[TopicPartition, list[Any]]) -> list[Message]:
        messages: list[Message] = []
        for tp, records in batches.items():
            key = (tp.topic, tp.partition)
            expected = self._positions.get(key)
            if records and key in self._unlogged:
                self._first_offsets.setdefault(key, records[0].offset)
            for record in records:
                # After a rebalance the broker may hand back messages this
                # process already returned: drop them to deliver each once.
                if expected is not None and record.offset < expected:
                    continue
                messages.append((record.topic, record.partition, record.offset, record.value))
                expected = record.offset + 1
            if expected is not None:
                self._positions[key] = expected
        return messages

    def _seek(self, key: PartitionKey, offset: int) -> None:
        assert self._consumer is not None
        self._consumer.seek(TopicPartition(*key), offset)
        self._positions[key] = offset
        self._pending_seeks.pop(key, None)
        logger.info("sought %s[%s] to offset %s", key[0], key[1], offset)

    def _mark_assigned(self, keys: list[PartitionKey]) -> None:
        self._unlogged.update(keys)
        for key in keys:
            if key in self._pending_seeks:
                self._seek(key, self._pending_seeks[key])
            elif key in self._positions:
                self._resume_owned(key)
        if self._on_assigned is not None:
            self._on_assigned(sorted(keys))

    def _resume_owned(self, key: PartitionKey) -> None:
        # The partition comes back after a rebalance (for example after an
        # outage): continue after what this process already returned. This
        # runs inside the rebalance callback, where kafka-python forbids
        # blocking calls, so whether another member committed further
        # meanwhile is checked at the start of the next poll.
        self._seek(key, self._positions[key])
        self._resume_checks.add(key)

    def _check_resumed(self) -> None:
        assert self._consumer is not None
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for key in sorted(self._resume_checks & assigned):
            try:
                committed = self._consumer.committed(TopicPartition(*key))
            except KafkaError as error:
                logger.warning("reading the committed offset of %s[%s] failed: %s", key[0], key[1], error)
                continue
            if committed is not None and committed > self._positions.get(key, 0):
                self._seek(key, committed)
        self._resume_checks.clear()

    def _mark_revoked(self, keys: list[PartitionKey]) -> None:
        if not keys:
            return
        logger.info("partitions revoked: %s", ", ".join(f"{t}[{p}]" for t, p in sorted(keys)))
        if self._on_revoked is not None:
            self._on_revoked(sorted(keys))

    def _log_starting_offsets(self) -> None:
        assert self._consumer is not None
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for key in sorted(self._unlogged & assigned):
            tp = TopicPartition(*key)
            try:
                position = self._first_offsets.pop(key, None)
                if position is None:
                    position = self._consumer.position(tp, timeout_ms=1000)
                committed = self._consumer.committed(tp)
            except KafkaError as error:
                logger.warning("reading the start offset of %s[%s] failed: %s", key[0], key[1], error)
                continue
            source = "committed offset" if committed is not None else f"auto_offset_reset={self._client_options['auto_offset_reset']}"
            logger.info("consuming %s[%s] from offset %s (%s)", key[0], key[1], position, source)
            self._unlogged.discard(key)

    def _all_partitions(self) -> list[TopicPartition]:
        consumer = self._require_started()
        deadline = time.monotonic() + self.metadata_timeout_s
        partitions: list[TopicPartition] = []
        missing = list(self.topics)
        while missing and time.monotonic() < deadline:
            consumer.topics()  # refreshes metadata for every topic
            still_missing = []
            for topic in missing:
                numbers = consumer.partitions_for_topic(topic)
                if numbers:
                    partitions.extend(TopicPartition(topic, number) for number in sorted(numbers))
                else:
                    still_missing.append(topic)
            missing = still_missing
            if missing:
                self._sleep(0.2)
        if missing:
            raise InputError(
                f"Kafka topic(s) {', '.join(missing)} not found within {self.metadata_timeout_s} s: create them, "
                "or start a producer first, or use assignment='group'"
            )
        return partitions

    def _back_off(self, operation: str, error: KafkaError) -> None:
        self._failures += 1
        delay_ms = min(self.retry_backoff_max_ms, self.retry_backoff_initial_ms * 2 ** (self._failures - 1))
        logger.warning(
            "Kafka %s failed (attempt %s, retrying in %s ms): %s: %s",
            operation, self._failures, delay_ms, type(error).__name__, error,
        )
        self._sleep(delay_ms / 1000)

    def _note_recovered(self, operation: str) -> None:
        if self._failures:
            logger.info("Kafka %s succeeded again after %s failed attempts", operation, self._failures)
            self._failures = 0

    def _require_started(self) -> KafkaConsumer:
        if self._consumer is None:
            raise StateError("the Kafka consumer is not started: call start() or use it as a context manager")
        return self._consumer


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: RecordConsumer) -> None:
        self._owner = owner

    # kafka-python replaces an exception raised here by a bare "User
    # rebalance callback throws an error"; log the cause with its traceback.
    def on_partitions_revoked(self, revoked: Any) -> None:
        try:
            self._owner._mark_revoked([(tp.topic, tp.partition) for tp in revoked])
        except Exception:
            logger.exception("handling revoked partitions failed")
            raise

    def on_partitions_assigned(self, assigned: Any) -> None:
        keys = [(tp.topic, tp.partition) for tp in assigned]
        logger.info("partitions assigned: %s", ", ".join(f"{t}[{p}]" for t, p in sorted(keys)))
        try:
            self._owner._mark_assigned(keys)
        except Exception:
            logger.exception("handling assigned partitions %s failed", keys)
            raise


def _checked_offsets(offsets: Mapping[PartitionKey, int]) -> dict[PartitionKey, int]:
    checked = {}
    for key, offset in offsets.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int)):
            raise InputError(f"offset key {key!r} is invalid: use a (topic, partition) tuple")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InputError(f"offset {offset!r} for {key[0]}[{key[1]}] is invalid: use a non-negative integer")
        checked[key] = offset
    return checked


def _describe(offsets: Mapping[PartitionKey, int]) -> str:
    return ", ".join(f"{topic}[{partition}]@{offset}" for (topic, partition), offset in sorted(offsets.items()))


def _validate_settings(
    bootstrap_servers: str,
    topics: Sequence[str],
    group_id: str,
    assignment: str,
    auto_offset_reset: str,
    session_timeout_ms: int,
    heartbeat_interval_ms: int,
    max_poll_interval_ms: int,
    max_poll_records: int,
    retry_backoff_initial_ms: int,
    retry_backoff_max_ms: int,
    commit_timeout_s: float,
    health_check_interval_s: float,
) -> None:
    if not bootstrap_servers or not isinstance(bootstrap_servers, str):
        raise ConfigError(f"kafka.bootstrap_servers {bootstrap_servers!r} is invalid: use host:port[,host:port]")
    if isinstance(topics, str) or not topics or not all(isinstance(t, str) and t for t in topics):
        raise ConfigError(f"Kafka topics {topics!r} are invalid: give a non-empty list of topic names")
    if not group_id:
        raise ConfigError("kafka.group_id is empty: commits need a consumer group id")
    if assignment not in ("group", "manual"):
        raise ConfigError(f"consumer assignment {assignment!r} is invalid: use 'group' or 'manual'")
    if auto_offset_reset not in ("earliest", "latest"):
        raise ConfigError(f"kafka.auto_offset_reset {auto_offset_reset!r} is invalid: use 'earliest' or 'latest'")
    if heartbeat_interval_ms <= 0 or session_timeout_ms < 3 * heartbeat_interval_ms:
        raise ConfigError(
            f"kafka.session_timeout_ms {session_timeout_ms} must be at least three times "
            f"kafka.heartbeat_interval_ms {heartbeat_interval_ms}, so a member survives a lost heartbeat"
        )
    if max_poll_interval_ms < session_timeout_ms:
        raise ConfigError(
            f"kafka.max_poll_interval_ms {max_poll_interval_ms} is below kafka.session_timeout_ms "
            f"{session_timeout_ms}: raise it above the longest processing time between two polls"
        )
    if max_poll_records <= 0:
        raise ConfigError(f"kafka.max_poll_records {max_poll_records} is invalid: use a positive number of messages")
    if retry_backoff_initial_ms <= 0 or retry_backoff_max_ms < retry_backoff_initial_ms:
        raise ConfigError(
            f"retry backoff {retry_backoff_initial_ms}..{retry_backoff_max_ms} ms is invalid: "
            "the initial backoff must be positive and not above the maximum"
        )
    if health_check_interval_s <= 0:
        raise ConfigError(f"health_check_interval_s {health_check_interval_s} is invalid: use a positive number of seconds")
    if commit_timeout_s <= 0:
        raise ConfigError(f"commit_timeout_s {commit_timeout_s} is invalid: use a positive number of seconds")
