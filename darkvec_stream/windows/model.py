"""What a closed window hands to the next stage, and the hand-off interface.

This is the only contract between windowing and the embedding stage: the
embedding, labelling and clustering stages see windows, never records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol


@dataclass(frozen=True, slots=True)
class Sentence:
    """The time-ordered senders that hit one service in one window.

    Consecutive repeats of a sender are already collapsed to one token.
    """

    service: str
    senders: tuple[str, ...]


@dataclass(slots=True)
class SenderActivity:
    """What one sender did inside one window, for profiles and labels."""

    packets: int = 0
    first_ns: int = 0
    last_ns: int = 0
    dst_ports: dict[int, int] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    mirai_packets: int = 0


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One event-time window after its watermark passed its end.

    ``activity`` covers the senders that passed the sender filter, which are
    exactly the senders that appear in ``sentences``. ``records`` counts
    every record assigned to the window, filtered senders included.
    """

    index: int
    start_ns: int
    end_ns: int
    sentences: tuple[Sentence, ...]
    activity: Mapping[str, SenderActivity]
    records: int
    senders_seen: int
    late_records: int

    @property
    def words(self) -> int:
        return sum(len(sentence.senders) for sentence in self.sentences)


class WindowSink(Protocol):
    """The next stage after windowing: it receives each closed window once."""

    def on_window(self, window: ClosedWindow) -> None: ...
