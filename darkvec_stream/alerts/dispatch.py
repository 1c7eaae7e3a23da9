"""Deduplicate and rate-limit alerts, then fan them out to every sink.

An alert id that was already emitted is suppressed as ``duplicate``, also
after a restart, because the bounded ledger of emitted ids is saved with
each checkpoint. Token buckets per alert type and per cluster run on event
time (``Alert.time_ns``), never on wall time, so a replay makes the same
decisions. Rendering and delivery belong to the sinks.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from darkvec_stream.alerts.formats.common import NS_PER_S, severity_rank
from darkvec_stream.alerts.formats.jsonl import alert_from_dict, alert_to_dict
from darkvec_stream.alerts.model import Alert, AlertType
from darkvec_stream.alerts.sinks.base import AlertSink
from darkvec_stream.errors import ConfigError, StateError

logger = logging.getLogger(__name__)

STATE_FILE = "alert_dispatch.json"
STATE_VERSION = 1

SUPPRESSED_DUPLICATE = "duplicate"
SUPPRESSED_RATE_LIMITED = "rate_limited"
SUPPRESSION_REASONS = (SUPPRESSED_DUPLICATE, SUPPRESSED_RATE_LIMITED)

_NS_PER_HOUR = 3600 * NS_PER_S


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: up to ``burst`` alerts at once, refilled at ``per_hour`` per event hour.

    With hourly windows every alert of one window carries nearly the same
    time, so ``burst`` is in effect the cap per window.
    """

    per_hour: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_hour > 0:
            raise ConfigError(f"alert rate limit per_hour {self.per_hour} is invalid; use > 0")
        if self.burst < 1:
            raise ConfigError(f"alert rate limit burst {self.burst} is invalid; use >= 1")


#: Production defaults per alert type. Label changes concern single senders
#: and come in larger numbers than cluster events.
DEFAULT_TYPE_LIMITS: Mapping[AlertType, RateLimit] = {
    AlertType.NEW_CLUSTER: RateLimit(per_hour=20, burst=20),
    AlertType.REEMERGED_CLUSTER: RateLimit(per_hour=20, burst=20),
    AlertType.CLUSTER_DRIFT: RateLimit(per_hour=20, burst=20),
    AlertType.LABEL_CHANGE: RateLimit(per_hour=100, burst=100),
}

#: At most 3 alerts per cluster at once and one per hour sustained.
DEFAULT_CLUSTER_LIMIT = RateLimit(per_hour=1, burst=3)


class TokenBuckets:
    """Token buckets sharing one ``RateLimit``, keyed by alert type or cluster id.

    A bucket that has refilled completely behaves exactly like a new one.
    So when more than ``max_keys`` buckets are tracked, full ones are
    forgotten first, then the ones idle longest.
    """

    def __init__(self, limit: RateLimit, max_keys: int = 100_000) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._state: dict[str, tuple[float, int]] = {}
        self._latest_ns: int | None = None

    def tokens(self, key: str, time_ns: int) -> float:
        """Return the tokens available to ``key`` at ``time_ns`` without taking one."""
        state = self._state.get(key)
        if state is None:
            return float(self.limit.burst)
        tokens, last_ns = state
        elapsed_ns = max(0, time_ns - last_ns)
        refill = elapsed_ns * self.limit.per_hour / _NS_PER_HOUR
        return min(float(self.limit.burst), tokens + refill)

    def take(self, key: str, time_ns: int) -> None:
        """Take one token from ``key`` at ``time_ns``; the caller checked ``tokens`` >= 1."""
        previous = self._state.get(key)
        last_ns = time_ns if previous is None else max(previous[1], time_ns)
        self._state[key] = (self.tokens(key, time_ns) - 1.0, last_ns)
        self._latest_ns = time_ns if self._latest_ns is None else max(self._latest_ns, time_ns)
        if len(self._state) > self._max_keys:
            self._prune()

    def to_json(self) -> dict[str, list[float | int]]:
        """Return the bucket states as JSON-ready ``{key: [tokens, last_ns]}``."""
        return {key: [tokens, last_ns] for key, (tokens, last_ns) in self._state.items()}

    def restore(self, state: Mapping[str, Sequence[float | int]]) -> None:
        """Replace the bucket states with ``to_json`` output."""
        self._state = {str(key): (float(value[0]), int(value[1])) for key, value in state.items()}
        self._latest_ns = max((last for _, last in self._state.values()), default=None)

    def __len__(self) -> int:
        return len(self._state)

    def _prune(self) -> None:
        now_ns = self._latest_ns if self._latest_ns is not None else 0
        for key in [key for key in self._state if self.tokens(key, now_ns) >= self.limit.burst]:
            del self._state[key]
        if len(self._state) > self._max_keys:
            by_idle = sorted(self._state, key=lambda key: (self._state[key][1], key))
            for key in by_idle[: len(self._state) - self._max_keys]:
                del self._state[key]


class EmittedLedger:
    """The ids of emitted alerts, bounded by count and by age in event time.

    Ids older than ``max_age_s`` before the newest recorded alert, or beyond
    the newest ``max_ids``, are forgotten in insertion order.
    """

    def __init__(self, max_ids: int = 100_000, max_age_s: float = 30 * 86400) -> None:
        if max_ids < 1:
            raise ConfigError(f"alert ledger max_ids {max_ids} is invalid; use >= 1")
        if max_age_s <= 0:
            raise ConfigError(f"alert ledger max_age_s {max_age_s} is invalid; use > 0")
        self._max_ids = max_ids
        self._max_age_ns = int(max_age_s * NS_PER_S)
        self._entries: OrderedDict[str, int] = OrderedDict()
        self._newest_ns: int | None = None

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, alert_id: str, time_ns: int) -> None:
        """Record one emitted alert id, then forget what exceeds the bounds."""
        self._entries[alert_id] = time_ns
        self._entries.move_to_end(alert_id)
        self._newest_ns = time_ns if self._newest_ns is None else max(self._newest_ns, time_ns)
        self._evict()

    def to_json(self) -> list[list[str | int]]:
        """Return ``[[alert_id, time_ns], ...]`` in insertion order."""
        return [[alert_id, time_ns] for alert_id, time_ns in self._entries.items()]

    def restore(self, entries: Iterable[Sequence[str | int]]) -> None:
        """Replace the ledger with ``to_json`` output."""
        self._entries = OrderedDict((str(entry[0]), int(entry[1])) for entry in entries)
        self._newest_ns = max(self._entries.values(), default=None)
        self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self._max_ids:
            self._entries.popitem(last=False)
        if self._newest_ns is None:
            return
        horizon_ns = self._newest_ns - self._max_age_ns
        # Entries arrive in nearly ascending time; stop at the first recent one.
        while self._entries and next(iter(self._entries.values())) < horizon_ns:
            self._entries.popitem(last=False)


def _alert_type(value: AlertType | str) -> AlertType:
    try:
        return AlertType(value)
    except ValueError:
        allowed = ", ".join(alert_type.value for alert_type in AlertType)
        raise ConfigError(
            f"alert type {value!r} in the rate limits is unknown; use one of {allowed}"
        ) from None


@dataclass(slots=True)
class DispatchReport:
    """The alerts one ``dispatch`` call emitted, and the ones it suppressed with the reason."""

    emitted: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[Alert, str]] = field(default_factory=list)


class AlertDispatcher:
    """Suppress duplicates and over-limit alerts, send the rest to every sink.

    Within one call, alerts are considered by severity (high first), then in
    the order given, so rate limits cut low-severity alerts first.
    ``type_limits`` maps alert types to limits (a type missing from the map
    is not limited); ``cluster_limit`` None disables the per-cluster limit.

    >>> dispatcher = AlertDispatcher(sinks=[])
    >>> from darkvec_stream.alerts.examples import new_cluster_example
    >>> alert = new_cluster_example()
    >>> [len(dispatcher.dispatch([alert]).emitted) for _ in range(2)]
    [1, 0]
    >>> dispatcher.suppressed_counts[("duplicate", "new_cluster")]
    1
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink] = (),
        *,
        type_limits: Mapping[AlertType | str, RateLimit] | None = None,
        cluster_limit: RateLimit | None = DEFAULT_CLUSTER_LIMIT,
        ledger_max_ids: int = 100_000,
        ledger_max_age_s: float = 30 * 86400,
        max_tracked_clusters: int = 100_000,
    ) -> None:
        names = [sink.name for sink in sinks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(
                f"alert sink names must be unique, found {duplicates}; give each sink a name"
            )
        self.sinks = list(sinks)
        limits = DEFAULT_TYPE_LIMITS if type_limits is None else type_limits
        self._type_buckets = {
            _alert_type(alert_type).value: TokenBuckets(limit)
            for alert_type, limit in limits.items()
        }
        self._cluster_buckets = (
            None if cluster_limit is None else TokenBuckets(cluster_limit, max_tracked_clusters)
        )
        self._ledger = EmittedLedger(ledger_max_ids, ledger_max_age_s)
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self._emitted: Counter[str] = Counter()

    # -- dispatch ---------------------------------------------------------

    def dispatch(self, alerts: Iterable[Alert]) -> DispatchReport:
        """Decide for each alert, then send the emitted ones to every sink."""
        report = DispatchReport()
        ranked = sorted(
            enumerate(alerts), key=lambda item: (-severity_rank(item[1].severity), item[0])
        )
        for _, alert in ranked:
            reason = self._suppression_reason(alert)
            if reason is None:
                self._emit(alert)
                report.emitted.append(alert)
            else:
                self._suppressed[(reason, alert.type.value)] += 1
                report.suppressed.append((alert, reason))
                logger.debug("alert %s suppressed: %s", alert.alert_id, reason)
        return report

    def poll(self) -> None:
        """Let every sink retry buffered alerts whose backoff has expired."""
        for sink in self.sinks:
            sink.poll()

    def flush(self) -> None:
        """Flush every sink (deliver what is due, make it durable)."""
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()

    @property
    def suppressed_counts(self) -> Counter[tuple[str, str]]:
        """Suppressed alerts by (reason, alert type): ``duplicate`` or ``rate_limited``."""
        return Counter(self._suppressed)

    @property
    def emitted_counts(self) -> Counter[str]:
        """Emitted alerts by alert type."""
        return Counter(self._emitted)

    # -- checkpoint -------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the ledger, buckets, counters and undelivered alerts to ``directory``."""
        cluster_buckets = self._cluster_buckets
        state = {
            "version": STATE_VERSION,
            "ledger": self._ledger.to_json(),
            "type_buckets": {key: bucket.to_json() for key, bucket in self._type_buckets.items()},
            "cluster_buckets": None if cluster_buckets is None else cluster_buckets.to_json(),
            "suppressed": [
                [reason, kind, count] for (reason, kind), count in sorted(self._suppressed.items())
            ],
            "emitted": dict(sorted(self._emitted.items())),
            "pending": {
                sink.name: [alert_to_dict(alert) for alert in sink.pending_alerts()]
                for sink in self.sinks
            },
        }
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{STATE_FILE}.tmp"
        temporary.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(temporary, directory / STATE_FILE)

    def load(self, directory: Path) -> None:
        """Restore what ``save`` wrote; undelivered alerts go back to the sinks of the same name."""
        path = directory / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise StateError(
                f"alert dispatch state {path} is missing; was the checkpoint complete?"
            ) from None
        except (OSError, ValueError) as error:
            raise StateError(f"alert dispatch state {path} is unreadable: {error}") from error
        version = state.get("version") if isinstance(state, dict) else None
        if version != STATE_VERSION:
            raise StateError(
                f"alert dispatch state {path} has version {version!r}, expected "
                f"{STATE_VERSION}; it was written by another version of darkvec-stream"
            )
        try:
            self._restore(state)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise StateError(f"alert dispatch state {path} is corrupt: {error!r}") from error

    # -- internals --------------------------------------------------------

    def _suppression_reason(self, alert: Alert) -> str | None:
        if alert.alert_id in self._ledger:
            return SUPPRESSED_DUPLICATE
        buckets = self._buckets_for(alert)
        if any(bucket.tokens(key, alert.time_ns) < 1.0 for bucket, key in buckets):
            return SUPPRESSED_RATE_LIMITED
        # Take tokens only once every limit allows, so a refusal by one
        # limit does not use up another.
        for bucket, key in buckets:
            bucket.take(key, alert.time_ns)
        return None

    def _buckets_for(self, alert: Alert) -> list[tuple[TokenBuckets, str]]:
        buckets: list[tuple[TokenBuckets, str]] = []
        type_bucket = self._type_buckets.get(alert.type.value)
        if type_bucket is not None:
            buckets.append((type_bucket, alert.type.value))
        if self._cluster_buckets is not None and alert.cluster_id is not None:
            buckets.append((self._cluster_buckets, alert.cluster_id))
        return buckets

    def _emit(self, alert: Alert) -> None:
        self._ledger.add(alert.alert_id, alert.time_ns)
        self._emitted[alert.type.value] += 1
        for sink in self.sinks:
            sink.send(alert)

    def _restore(self, state: Mapping[str, Any]) -> None:
        self._ledger.restore(state["ledger"])
        for key, buckets in self._type_buckets.items():
            buckets.restore(state["type_buckets"].get(key, {}))
        if self._cluster_buckets is not None:
            self._cluster_buckets.restore(state["cluster_buckets"] or {})
        self._suppressed = Counter(
            {(reason, kind): int(count) for reason, kind, count in state["suppressed"]}
        )
        self._emitted = Counter({kind: int(count) for kind, count in state["emitted"].items()})
        sinks = {sink.name: sink for sink in self.sinks}
        for name, documents in state["pending"].items():
            alerts = [alert_from_dict(document) for document in documents]
            if name in sinks:
                sinks[name].restore_pending(alerts)
            elif alerts:
                logger.warning(
                    "checkpoint contains %d undelivered alerts for sink %s, which is no longer "
                    "configured; they are dropped",
                    len(alerts), name,
                )
