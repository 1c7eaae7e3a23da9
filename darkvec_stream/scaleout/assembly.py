"""Assemble whole windows from the per-partition parts that window workers publish.

``WindowAssembler`` collects parts and progress markers, decides when a
window is complete (every partition closed through it, ended, or idle),
drops duplicates, and keeps its state for checkpoints. ``merge_parts``
turns one complete window's parts into the ``ClosedWindow`` a single
daemon would have built, applying the sender filter to the merged counts.
Neither reads Kafka nor trains anything.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import orjson

from darkvec_stream.errors import StateError
from darkvec_stream.scaleout.messages import MessageError, Progress, WindowPart, decode_message
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence
from darkvec_stream.windows.sender_filter import SenderFilter

logger = logging.getLogger(__name__)

_STATE_VERSION = 1
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
ALREADY_PROCESSED = "already_processed"


@dataclass(frozen=True)
class ReadyWindow:
    """The parts of one complete window, and which partitions were skipped or cut short."""

    index: int
    parts: tuple[WindowPart, ...]
    idle_partitions: tuple[int, ...]
    incomplete_partitions: tuple[int, ...]


@dataclass
class _PendingPart:
    chunks: int
    payloads: dict[int, bytes] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.payloads) == self.chunks


class WindowAssembler:
    """Collect window parts from ``partitions`` by-service partitions and release complete windows in order.

    Window ``w`` is complete once every partition has either reported
    progress through ``w``, reported the end of its input (``final``), or
    been idle: silent for ``idle_timeout_s`` of wall-clock time while it was
    the reason ``w`` waited. An idle partition is treated as having no part
    in ``w``; a part that arrives for an already released window is dropped
    and counted. Windows are released in index order, each once; a chunk
    seen before is a duplicate (a worker re-emits windows after a failover)
    and is dropped. ``clock`` returns monotonic seconds.
    """

    def __init__(self, partitions: int, idle_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if partitions < 1:
            raise ValueError(f"partition count {partitions} is invalid: the records topic has at least 1 partition")
        self.partitions = partitions
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._done_through: int | None = None
        self._progress: dict[int, int] = {}
        self._final: set[int] = set()
        self._pending: dict[int, dict[int, _PendingPart]] = {}
        started = clock()
        self._last_heard: dict[int, float] = {partition: started for partition in range(partitions)}
        self._waiting_since: dict[int, float] = {}
        self.counts: dict[str, int] = {ACCEPTED: 0, DUPLICATE: 0, ALREADY_PROCESSED: 0}

    # -- read-only state ---------------------------------------------------

    @property
    def done_through(self) -> int | None:
        """The last window released, or None before the first."""
        return self._done_through

    @property
    def pending_windows(self) -> list[int]:
        return sorted(self._pending)

    def progress(self) -> dict[int, int]:
        return dict(self._progress)

    @property
    def all_final(self) -> bool:
        """True when every partition reported the end of its input and nothing waits."""
        return len(self._final) == self.partitions and not self._pending

    # -- input -------------------------------------------------------------

    def add(self, payload: bytes) -> str:
        """Decode and keep one sentences-topic message; return accepted, duplicate or already_processed.

        Raises ``MessageError`` for a message that cannot be read or names a
        partition outside this assembler's partition count.
        """
        message = decode_message(payload)
        self._check_partition(message)
        self._last_heard[message.partition] = self._clock()
        self._waiting_since.pop(message.partition, None)
        if isinstance(message, Progress):
            self._add_progress(message)
            return ACCEPTED
        status = self._add_part(message, payload)
        self.counts[status] += 1
        return status

    def _check_partition(self, message: WindowPart | Progress) -> None:
        if message.partitions != self.partitions:
            raise MessageError(
                f"message from partition {message.partition} counts {message.partitions} partitions in the "
                f"records topic, the trainer {self.partitions}: a topic's partition count must not change "
                "while it is scaled out; restart workers and trainer on a new topic"
            )
        if not 0 <= message.partition < self.partitions:
            raise MessageError(f"message names partition {message.partition}, outside 0..{self.partitions - 1}")

    def _add_progress(self, progress: Progress) -> None:
        previous = self._progress.get(progress.partition)
        if previous is None or progress.closed_through > previous:
            self._progress[progress.partition] = progress.closed_through
        if progress.final:
            self._final.add(progress.partition)
        else:
            self._final.discard(progress.partition)

    def _add_part(self, part: WindowPart, payload: bytes) -> str:
        self._final.discard(part.partition)
        if self._done_through is not None and part.window <= self._done_through:
            return ALREADY_PROCESSED
        parts = self._pending.setdefault(part.window, {})
        pending = parts.get(part.partition)
        if pending is None:
            pending = parts[part.partition] = _PendingPart(part.chunks)
        elif pending.chunks != part.chunks or part.chunk in pending.payloads:
            # The first emission of a part wins: a copy with another chunk
            # count comes from a worker that re-read fewer records of an
            # already closed window after a failover.
            return DUPLICATE
        pending.payloads[part.chunk] = payload
        return ACCEPTED

    # -- output ------------------------------------------------------------

    def ready(self) -> list[ReadyWindow]:
        """Release every complete window, oldest first; each is released once."""
        released: list[ReadyWindow] = []
        while self._pending:
            index = min(self._pending)
            idle = self._idle_or_blocking(index)
            if idle is None:
                break
            parts = self._pending.pop(index)
            self._done_through = index
            incomplete = tuple(sorted(p for p, pending in parts.items() if not pending.complete))
            decoded = tuple(
                _decode_part(payload)
                for partition in sorted(parts)
                for _, payload in sorted(parts[partition].payloads.items())
            )
            released.append(ReadyWindow(index, decoded, idle, incomplete))
        return released

    def _idle_or_blocking(self, index: int) -> tuple[int, ...] | None:
        """Return the idle partitions window ``index`` goes without, or None while one still blocks it."""
        now = self._clock()
        idle: list[int] = []
        for partition in range(self.partitions):
            if partition in self._final or self._progress.get(partition, -math.inf) >= index:
                continue
            since = self._waiting_since.setdefault(partition, now)
            if now - max(since, self._last_heard[partition]) < self.idle_timeout_s:
                return None
            idle.append(partition)
        return tuple(idle)

    # -- checkpoint state --------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Return the state a checkpoint keeps: progress, ended partitions and pending chunks."""
        return {
            "version": _STATE_VERSION,
            "partitions": self.partitions,
            "done_through": self._done_through,
            "progress": sorted(self._progress.items()),
            "final": sorted(self._final),
            "pending": [
                [index, partition, pending.chunks, [[chunk, payload.decode()] for chunk, payload in sorted(pending.payloads.items())]]
                for index, parts in sorted(self._pending.items())
                for partition, pending in sorted(parts.items())
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``state()`` output; raise ``StateError`` if it is unreadable or for another partition count."""
        try:
            if state["version"] != _STATE_VERSION:
                raise StateError(f"scale-out assembler state has version {state['version']!r}, expected {_STATE_VERSION}")
            if state["partitions"] != self.partitions:
                raise StateError(
                    f"the checkpoint assembled {state['partitions']} partitions but the records topic has "
                    f"{self.partitions}: start the trainer without that checkpoint on a new topic"
                )
            done = state["done_through"]
            self._done_through = None if done is None else int(done)
            self._progress = {int(p): int(c) for p, c in state["progress"]}
            self._final = {int(p) for p in state["final"]}
            self._pending = {}
            for index, partition, chunks, payloads in state["pending"]:
                pending = _PendingPart(int(chunks), {int(c): str(text).encode() for c, text in payloads})
                self._pending.setdefault(int(index), {})[int(partition)] = pending
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"invalid scale-out assembler state: {type(error).__name__}: {error}") from None

    def save(self) -> bytes:
        return orjson.dumps(self.state())

    def load(self, data: bytes) -> None:
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise StateError(f"unreadable scale-out assembler state: {error}") from None
        if not isinstance(state, dict):
            raise StateError("unreadable scale-out assembler state: expected a JSON object")
        self.load_state(state)


def _decode_part(payload: bytes) -> WindowPart:
    message = decode_message(payload)
    assert isinstance(message, WindowPart)  # only parts are kept pending
    return message


def merge_parts(index: int, parts: Iterable[WindowPart], sender_filter: SenderFilter) -> ClosedWindow:
    """Merge the parts of window ``index`` into the ``ClosedWindow`` one daemon would have closed.

    Parts are taken in (partition, chunk) order, so the result does not
    depend on arrival order. Per-sender activity is summed over partitions
    (first seen is the minimum, last seen the maximum, ports and Mirai
    packets added, services united). The sender filter then counts each
    sender's merged packets once, exactly as ``close_window`` does, and
    sentences keep only passing senders, with the repeats that dropping
    others made adjacent collapsed. A service found in two partitions (a
    topic not partitioned by service) has its pieces joined in partition
    order.
    """
    ordered = sorted(parts, key=lambda part: (part.partition, part.chunk))
    if not ordered:
        raise ValueError(f"window {index} has no part to merge")
    first = ordered[0]

    # 1. Add up counts, join sentence pieces, merge activity.
    tokens: dict[str, list[str]] = {}
    activity: dict[str, SenderActivity] = {}
    records = late_records = 0
    for part in ordered:
        records += part.records
        late_records += part.late_records
        for service, senders in part.sentences:
            tokens.setdefault(service, []).extend(senders)
        for sender, seen in part.activity:
            _merge_activity(activity, sender, seen)

    # 2. The sender filter sees each sender's window total once, in name order.
    names = sorted(activity)
    packets = np.fromiter((activity[name].packets for name in names), dtype=np.int64, count=len(names))
    passed = sender_filter.update(first.start_ns, names, packets)
    passing = {name for name, keep in zip(names, passed.tolist()) if keep}

    # 3. Sentences of passing senders, consecutive repeats collapsed.
    sentences = []
    for service in sorted(tokens):
        kept: list[str] = []
        for sender in tokens[service]:
            if sender in passing and (not kept or kept[-1] != sender):
                kept.append(sender)
        if kept:
            sentences.append(Sentence(service, tuple(kept)))
    return ClosedWindow(
        index=index,
        start_ns=first.start_ns,
        end_ns=first.end_ns,
        sentences=tuple(sentences),
        activity={name: _ports_in_order(activity[name]) for name in names if name in passing},
        records=records,
        senders_seen=len(names),
        late_records=late_records,
    )


def _ports_in_order(activity: SenderActivity) -> SenderActivity:
    # close_window fills dst_ports in ascending port order, and later stages
    # iterate it, so the merged dict keeps that order too.
    activity.dst_ports = dict(sorted(activity.dst_ports.items()))
    return activity


def _merge_activity(activity: dict[str, SenderActivity], sender: str, seen: SenderActivity) -> None:
    known = activity.get(sender)
    if known is None:
        activity[sender] = SenderActivity(
            seen.packets, seen.first_ns, seen.last_ns, dict(seen.dst_ports), set(seen.services), seen.mirai_packets
        )
        return
    known.packets += seen.packets
    known.first_ns = min(known.first_ns, seen.first_ns)
    known.last_ns = max(known.last_ns, seen.last_ns)
    for port, count in seen.dst_ports.items():
        known.dst_ports[port] = known.dst_ports.get(port, 0) + count
    known.services |= seen.services
    known.mirai_packets += seen.mirai_packets
