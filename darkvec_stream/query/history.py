"""Per-sender activity over the recent windows, for the query API and the report.

``SenderHistory`` keeps, per sender still in the model, the first and last
event time, packet totals, the busiest destination ports and services, and
the packets of each of the last ``max_windows`` windows. Its memory is bounded
by the senders in the model times ``max_windows`` (senders that leave the model
are forgotten) and by ``max_ports`` per sender. It does not label or cluster;
it only remembers what closed windows showed.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

STATE_FILE = "history.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """One closed window: its index and its event-time bounds."""

    index: int
    start_ns: int
    end_ns: int


@dataclass(slots=True)
class SenderSummary:
    """One sender's totals and its packets per recent window.

    ``ports`` and ``services`` hold at most ``max_ports`` entries each, the
    busiest ones (by packets and by windows active). ``activity`` maps a window
    index to the sender's packets in it, for the windows still remembered.
    """

    first_seen_ns: int
    last_seen_ns: int
    packets: int = 0
    windows_active: int = 0
    mirai_packets: int = 0
    ports: dict[int, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    activity: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "first_seen_ns": self.first_seen_ns,
            "last_seen_ns": self.last_seen_ns,
            "packets": self.packets,
            "windows_active": self.windows_active,
            "mirai_packets": self.mirai_packets,
            "ports": [[port, packets] for port, packets in self.ports.items()],
            "services": [[service, windows] for service, windows in self.services.items()],
            "activity": [[index, packets] for index, packets in self.activity.items()],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "SenderSummary":
        return cls(
            int(value["first_seen_ns"]), int(value["last_seen_ns"]), int(value["packets"]),
            int(value["windows_active"]), int(value["mirai_packets"]),
            {int(port): int(packets) for port, packets in value["ports"]},
            {str(service): int(windows) for service, windows in value["services"]},
            {int(index): int(packets) for index, packets in value["activity"]},
        )


class SenderHistory:
    """Per-sender first and last seen, ports, services and packets per recent window."""

    def __init__(self, max_windows: int = 168, max_ports: int = 16) -> None:
        if max_windows < 1:
            raise ConfigError(f"history max_windows {max_windows} is invalid: keep at least 1 window")
        if max_ports < 1:
            raise ConfigError(f"history max_ports {max_ports} is invalid: keep at least 1 port per sender")
        self.max_windows = max_windows
        self.max_ports = max_ports
        self._senders: dict[str, SenderSummary] = {}
        self._windows: deque[WindowSpan] = deque(maxlen=max_windows)

    def __len__(self) -> int:
        return len(self._senders)

    def __contains__(self, sender: object) -> bool:
        return sender in self._senders

    @property
    def windows(self) -> tuple[WindowSpan, ...]:
        """The remembered windows, oldest first."""
        return tuple(self._windows)

    def senders(self) -> list[str]:
        return list(self._senders)

    def get(self, sender: str) -> SenderSummary | None:
        return self._senders.get(sender)

    # -- updates -------------------------------------------------------------

    def observe(self, window: ClosedWindow) -> None:
        """Add one closed window's activity and drop the window that falls out."""
        if self._windows and window.index <= self._windows[-1].index:
            logger.warning("window %s is not after window %s already in the history: ignored",
                           window.index, self._windows[-1].index)
            return
        oldest = self._windows[0].index if len(self._windows) == self.max_windows else None
        self._windows.append(WindowSpan(window.index, window.start_ns, window.end_ns))
        for sender, seen in window.activity.items():
            summary = self._senders.get(sender)
            if summary is None:
                summary = self._senders[sender] = SenderSummary(seen.first_ns, seen.last_ns)
            summary.first_seen_ns = min(summary.first_seen_ns, seen.first_ns)
            summary.last_seen_ns = max(summary.last_seen_ns, seen.last_ns)
            summary.packets += seen.packets
            summary.windows_active += 1
            summary.mirai_packets += seen.mirai_packets
            summary.activity[window.index] = seen.packets
            _add_counts(summary.ports, seen.dst_ports, self.max_ports)
            _add_counts(summary.services, dict.fromkeys(sorted(seen.services), 1), self.max_ports)
        if oldest is not None:
            self._drop_window(oldest)

    def forget(self, senders: Iterable[str]) -> None:
        """Drop senders that left the model."""
        for sender in senders:
            self._senders.pop(sender, None)

    def _drop_window(self, index: int) -> None:
        for summary in self._senders.values():
            summary.activity.pop(index, None)

    # -- views ---------------------------------------------------------------

    def activity_matrix(self, senders: Sequence[str]) -> tuple[tuple[WindowSpan, ...], np.ndarray]:
        """Packets of each sender (rows) in each remembered window (columns)."""
        spans = self.windows
        column = {span.index: position for position, span in enumerate(spans)}
        matrix = np.zeros((len(senders), len(spans)), dtype=np.int64)
        for row, sender in enumerate(senders):
            summary = self._senders.get(sender)
            if summary is None:
                continue
            for index, packets in summary.activity.items():
                position = column.get(index)
                if position is not None:
                    matrix[row, position] = packets
        return spans, matrix

    # -- state ---------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the history as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": FORMAT_VERSION,
            "max_windows": self.max_windows,
            "max_ports": self.max_ports,
            "windows": [[span.index, span.start_ns, span.end_ns] for span in self._windows],
            "senders": [[sender, summary.to_json()] for sender, summary in self._senders.items()],
        }
        (directory / STATE_FILE).write_text(json.dumps(document, separators=(",", ":")))

    def load(self, directory: Path) -> None:
        """Replace the history with the one saved in ``directory``."""
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text())
            if document.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unsupported format_version {document.get('format_version')!r}")
            windows = [WindowSpan(int(i), int(start), int(end)) for i, start, end in document["windows"]]
            senders = {str(sender): SenderSummary.from_json(value) for sender, value in document["senders"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"sender history {path} is missing or corrupt: {error}") from error
        self._windows = deque(windows[-self.max_windows:], maxlen=self.max_windows)
        self._senders = senders
        if len(windows) > self.max_windows:
            kept = {span.index for span in self._windows}
            for summary in self._senders.values():
                summary.activity = {i: p for i, p in summary.activity.items() if i in kept}


def _add_counts(counts: dict, increments: dict, limit: int) -> None:
    for key, value in increments.items():
        counts[key] = counts.get(key, 0) + value
    if len(counts) > limit:
        # Keep the busiest keys; ties go to the smaller key so that a restore
        # and a replay keep the same ones.
        kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        counts.clear()
        counts.update(kept)
