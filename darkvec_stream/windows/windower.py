"""Event-time tumbling windows with a watermark, lateness and Kafka offsets.

The ``Windower`` buffers records per window, drops late records to a
callback, closes windows when the watermark passes their end and tracks
which Kafka offsets are safe to commit. Turning a window's records into
sentences is ``sentences.close_window``'s job; reading Kafka is not done
here.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable, Iterable

import orjson

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.ingest.record import Record
from darkvec_stream.windows.model import ClosedWindow
from darkvec_stream.windows.sender_filter import SenderFilter
from darkvec_stream.windows.sentences import close_window, window_start_iso
from darkvec_stream.windows.services import AutoServices, ServiceMap

logger = logging.getLogger(__name__)

Position = tuple[str, int, int]
TopicPartition = tuple[str, int]
LateCallback = Callable[[Record, "Position | None"], None]

DEFAULT_WINDOW_S = 3600
DEFAULT_LATENESS_S = 300

_NS_PER_S = 1_000_000_000
# Sentinels outside any real nanosecond timestamp, so the per-record checks
# stay plain integer comparisons.
_NO_WATERMARK = -(1 << 80)
_NO_OPEN_WINDOW = 1 << 80
_STATE_VERSION = 1


def _whole_seconds_ns(name: str, value: object, minimum_s: float) -> int:
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not valid or value < minimum_s or value != int(value):
        raise ConfigError(f"invalid {name} {value!r}: expected a whole number of seconds >= {minimum_s:g}")
    return int(value) * _NS_PER_S


class Windower:
    """Assign records to event-time tumbling windows and close them in order.

    Window ``i`` covers ``[i * window_s, (i + 1) * window_s)`` in Unix time,
    so hourly windows start on the hour in UTC. The watermark is the largest
    event time seen minus ``lateness_s``. A record is late iff its event time
    is below the watermark when it arrives. A late record is counted and
    handed to ``on_late(record, position)`` instead of being added. A
    window closes once the watermark reaches its end. ``flush()`` closes
    every open window at the end of input and moves the watermark to the
    last closed end, so a window is never closed twice.

    ``services`` defaults to ``AutoServices()`` (top 2,500 ``port/proto``)
    and ``sender_filter`` to ``SenderFilter()`` (10 packets over 30 days);
    pass ``SenderFilter(min_packets=1)`` to keep every sender.

    >>> from darkvec_stream.ingest.record import Record
    >>> windower = Windower(window_s=60, lateness_s=0, sender_filter=SenderFilter(min_packets=1))
    >>> windower.add(Record(ts_ns=1 * 10**9, src="192.0.2.1", dst_port=23, proto=6))
    []
    >>> [window.index for window in windower.add(Record(ts_ns=61 * 10**9, src="192.0.2.2", dst_port=23, proto=6))]
    [0]
    """

    def __init__(
        self,
        window_s: int = DEFAULT_WINDOW_S,
        lateness_s: int = DEFAULT_LATENESS_S,
        services: ServiceMap | None = None,
        sender_filter: SenderFilter | None = None,
        on_late: LateCallback | None = None,
    ) -> None:
        self.window_s = window_s
        self.lateness_s = lateness_s
        self._window_ns = _whole_seconds_ns("window_s", window_s, 1)
        self._lateness_ns = _whole_seconds_ns("lateness_s", lateness_s, 0)
        self.services: ServiceMap = services if services is not None else AutoServices()
        self.sender_filter = sender_filter if sender_filter is not None else SenderFilter()
        self.on_late = on_late

        self._buffers: dict[int, list[Record]] = {}
        self._first_offsets: dict[int, dict[TopicPartition, int]] = {}
        self._last_offsets: dict[TopicPartition, int] = {}
        self._max_ts_ns = _NO_WATERMARK
        self._watermark_ns = _NO_WATERMARK
        self._oldest_end_ns = _NO_OPEN_WINDOW
        self._late_records = 0
        self._late_since_close = 0
        self._replayed_records = 0

    # -- read-only state -------------------------------------------------

    @property
    def watermark_ns(self) -> int | None:
        """The current watermark, or None before the first record."""
        return None if self._watermark_ns == _NO_WATERMARK else self._watermark_ns

    @property
    def late_records(self) -> int:
        return self._late_records

    @property
    def replayed_records(self) -> int:
        """Records dropped because their Kafka offset was already seen."""
        return self._replayed_records

    @property
    def open_windows(self) -> list[int]:
        return sorted(self._buffers)

    # -- records -----------------------------------------------------------

    def add(self, record: Record, position: Position | None = None) -> list[ClosedWindow]:
        """Add one record; return the windows its watermark closed, oldest first.

        ``position`` is ``(topic, partition, offset)`` for Kafka input; see
        ``add_many`` for how offsets are tracked.
        """
        if position is not None:
            return self.add_many((record,), position)
        # The path without a position is the hot loop for file input, so it
        # is written out here instead of going through add_many.
        ts_ns = record[0]
        if ts_ns < self._watermark_ns:
            self._reject_late(record, None)
            return []
        index = ts_ns // self._window_ns
        buffer = self._buffers.get(index)
        if buffer is None:
            buffer = self._open(index)
        buffer.append(record)
        if ts_ns > self._max_ts_ns:
            return self._advance(ts_ns)
        return []

    def add_many(self, records: Iterable[Record], position: Position | None = None) -> list[ClosedWindow]:
        """Add the records of one Kafka message or file chunk; return the windows they closed.

        All records share ``position``, which is ``(topic, partition,
        offset)`` or None. A message whose offset is below the last one seen
        on its partition is a redelivery of data already processed: its
        records are dropped and counted in ``replayed_records``.
        """
        partition: TopicPartition | None = None
        offset = 0
        if position is not None:
            partition = (position[0], position[1])
            offset = position[2]
            last = self._last_offsets.get(partition)
            if last is not None and offset < last:
                self._replayed_records += sum(1 for _ in records)
                return []
            self._last_offsets[partition] = offset

        closed: list[ClosedWindow] = []
        buffers = self._buffers
        window_ns = self._window_ns
        buffer: list[Record] = []
        buffer_index: int | None = None
        for record in records:
            ts_ns = record[0]
            if ts_ns < self._watermark_ns:
                self._reject_late(record, position)
                continue
            index = ts_ns // window_ns
            if index != buffer_index:
                buffer_index = index
                found = buffers.get(index)
                buffer = found if found is not None else self._open(index)
                if partition is not None:
                    self._first_offsets[index].setdefault(partition, offset)
            buffer.append(record)
            if ts_ns > self._max_ts_ns:
                closed.extend(self._advance(ts_ns))
        return closed

    def mark_consumed(self, position: Position) -> None:
        """Record that a Kafka message produced no record (it was rejected), so its offset can be committed."""
        partition = (position[0], position[1])
        last = self._last_offsets.get(partition)
        if last is None or position[2] > last:
            self._last_offsets[partition] = position[2]

    def _advance(self, ts_ns: int) -> list[ClosedWindow]:
        """Move the watermark to a new largest event time and close the windows it passed."""
        self._max_ts_ns = ts_ns
        # max() because flush() may have moved the watermark past ts - lateness,
        # and a watermark that went back could reopen a closed window.
        watermark_ns = max(ts_ns - self._lateness_ns, self._watermark_ns)
        self._watermark_ns = watermark_ns
        if watermark_ns >= self._oldest_end_ns:
            return self._close_until(watermark_ns)
        return []

    def _open(self, index: int) -> list[Record]:
        buffer: list[Record] = []
        self._buffers[index] = buffer
        self._first_offsets[index] = {}
        self._oldest_end_ns = min(self._oldest_end_ns, (index + 1) * self._window_ns)
        return buffer

    def _reject_late(self, record: Record, position: Position | None) -> None:
        self._late_records += 1
        self._late_since_close += 1
        if self.on_late is not None:
            self.on_late(record, position)

    # -- closing -----------------------------------------------------------

    def flush(self) -> list[ClosedWindow]:
        """Close every open window (end of input), oldest first."""
        if not self._buffers:
            return []
        last_end_ns = (max(self._buffers) + 1) * self._window_ns
        closed = self._close_until(last_end_ns)
        # Records of a flushed window arriving afterwards must be late, or
        # the same window would be closed a second time.
        self._watermark_ns = max(self._watermark_ns, last_end_ns)
        return closed

    def _close_until(self, watermark_ns: int) -> list[ClosedWindow]:
        closed: list[ClosedWindow] = []
        for index in sorted(self._buffers):
            if (index + 1) * self._window_ns > watermark_ns:
                break
            closed.append(self._close(index))
        self._oldest_end_ns = (min(self._buffers) + 1) * self._window_ns if self._buffers else _NO_OPEN_WINDOW
        return closed

    def _close(self, index: int) -> ClosedWindow:
        records = self._buffers.pop(index)
        del self._first_offsets[index]
        window = close_window(index, self._window_ns, records, self.services, self.sender_filter, self._late_since_close)
        self._late_since_close = 0
        logger.info(
            "closed window %s: %d records, %d senders seen, %d senders kept, %d sentences, %d words, %d late records",
            window_start_iso(window.start_ns),
            window.records,
            window.senders_seen,
            len(window.activity),
            len(window.sentences),
            window.words,
            window.late_records,
        )
        return window

    # -- offsets -----------------------------------------------------------

    def consumed_offsets(self) -> dict[TopicPartition, int]:
        """Return, per partition, the offset after the last one seen."""
        return {partition: offset + 1 for partition, offset in self._last_offsets.items()}

    def committable_offsets(self) -> dict[TopicPartition, int]:
        """Return, per partition, the next offset that is safe to commit.

        Every offset below it belongs to a closed window or was late,
        rejected or replayed. Offsets that still feed an open window are
        not committable, so a restart without a checkpoint replays them.
        """
        committable = self.consumed_offsets()
        for first in self._first_offsets.values():
            for partition, offset in first.items():
                if offset < committable[partition]:
                    committable[partition] = offset
        return committable

    # -- checkpoint state --------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the windower, its sender filter and its services into ``directory``.

        Only JSON and ``.npy`` files are written. After a restore the daemon
        must resume each partition at ``consumed_offsets()``; open windows
        come back from the checkpoint, not from Kafka.
        """
        directory = Path(directory)
        state = {
            "version": _STATE_VERSION,
            "window_ns": self._window_ns,
            "lateness_ns": self._lateness_ns,
            "max_ts_ns": self._max_ts_ns,
            "watermark_ns": self._watermark_ns,
            "late_records": self._late_records,
            "late_since_close": self._late_since_close,
            "replayed_records": self._replayed_records,
            "last_offsets": [[topic, partition, offset] for (topic, partition), offset in self._last_offsets.items()],
            "first_offsets": [
                [index, [[topic, partition, offset] for (topic, partition), offset in first.items()]]
                for index, first in self._first_offsets.items()
            ],
        }
        (directory / "windower.json").write_text(json.dumps(state), encoding="utf-8")
        buffers = [[index, [list(record) for record in records]] for index, records in self._buffers.items()]
        (directory / "windower_records.json").write_bytes(orjson.dumps(buffers))
        self.sender_filter.save(directory)
        self.services.save(directory)

    def load(self, directory: Path) -> None:
        """Restore state saved by ``save`` with the same window settings; raise ``StateError`` otherwise."""
        directory = Path(directory)
        state = self._read_state(directory)
        buffers = self._read_buffers(directory)
        self.sender_filter.load(directory)
        self.services.load(directory)
        try:
            self._max_ts_ns = int(state["max_ts_ns"])
            self._watermark_ns = int(state["watermark_ns"])
            self._late_records = int(state["late_records"])
            self._late_since_close = int(state["late_since_close"])
            self._replayed_records = int(state["replayed_records"])
            self._last_offsets = {(str(t), int(p)): int(o) for t, p, o in state["last_offsets"]}
            self._first_offsets = {
                int(index): {(str(t), int(p)): int(o) for t, p, o in first} for index, first in state["first_offsets"]
            }
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"invalid windower state in {directory / 'windower.json'}: {error!r}") from error
        self._buffers = buffers
        for index in buffers:
            self._first_offsets.setdefault(index, {})
        self._oldest_end_ns = (min(buffers) + 1) * self._window_ns if buffers else _NO_OPEN_WINDOW

    def _read_state(self, directory: Path) -> dict[str, object]:
        path = directory / "windower.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StateError(f"unreadable windower state {path}: {error}") from error
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise StateError(f"unsupported windower state {path}: expected version {_STATE_VERSION}")
        saved = (state.get("window_ns"), state.get("lateness_ns"))
        if saved != (self._window_ns, self._lateness_ns):
            raise StateError(
                f"the windower state in {directory} uses window/lateness {saved} ns but the configuration is "
                f"{(self._window_ns, self._lateness_ns)} ns: use the same window_s and lateness_s "
                "or start without that checkpoint"
            )
        return state

    @staticmethod
    def _read_buffers(directory: Path) -> dict[int, list[Record]]:
        path = directory / "windower_records.json"
        try:
            rows = orjson.loads(path.read_bytes())
            if not isinstance(rows, list):
                raise ValueError("expected a JSON list of [window index, records]")
            buffers = {int(index): [Record(*fields) for fields in records] for index, records in rows}
        except (OSError, orjson.JSONDecodeError, TypeError, ValueError) as error:
            raise StateError(f"unreadable open-window records {path}: {error}") from error
        for records in buffers.values():
            for record in records:
                if not isinstance(record.ts_ns, int) or not isinstance(record.src, str):
                    raise StateError(f"unreadable open-window records {path}: invalid record {record!r}")
        return buffers
