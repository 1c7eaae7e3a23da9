"""The sentences-topic message format: window parts and progress markers, as versioned JSON.

A worker sends, per closed window of one by-service partition, the part of
that window (sentences, per-sender activity, counts), cut into numbered
chunks when it would exceed the message size limit, then a progress marker
saying through which window the partition is closed. This module encodes
and decodes those messages; it does not send or merge them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from darkvec_stream.errors import InputError
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

SCHEMA_VERSION = 1
PART = "part"
PROGRESS = "progress"
# Room for the envelope fields of a chunk (numbers, keys, brackets).
_ENVELOPE_BYTES = 1024


class MessageError(InputError):
    """A sentences-topic message that cannot be read; it goes to the dead-letter output."""


@dataclass(frozen=True)
class WindowPart:
    """One chunk of the part of window ``window`` seen on by-service partition ``partition``.

    ``sentences`` holds ``(service, senders)`` pieces in order: a sentence
    cut across chunks continues in the next chunk under the same service.
    ``activity`` covers every sender of the partition in the window, before
    the sender filter, which the trainer applies to the merged window.
    ``records`` and ``late_records`` are carried by chunk 0 only.
    """

    partition: int
    partitions: int
    window: int
    start_ns: int
    end_ns: int
    chunk: int
    chunks: int
    records: int
    late_records: int
    sentences: tuple[tuple[str, tuple[str, ...]], ...]
    activity: tuple[tuple[str, SenderActivity], ...]


@dataclass(frozen=True)
class Progress:
    """Partition ``partition`` is closed through window ``closed_through``.

    ``final`` means the worker flushed the partition at the end of a finite
    input, so the partition holds no later window either.
    """

    partition: int
    partitions: int
    closed_through: int
    final: bool = False


def message_key(partition: int, window: int | None) -> bytes:
    """Return the Kafka key of a message: ``p:window``, or ``p:progress`` for a marker."""
    return f"{partition}:{'progress' if window is None else window}".encode()


def encode_progress(progress: Progress) -> bytes:
    return orjson.dumps({
        "schema": SCHEMA_VERSION,
        "type": PROGRESS,
        "partition": progress.partition,
        "partitions": progress.partitions,
        "closed_through": progress.closed_through,
        "final": progress.final,
    })


def _activity_row(sender: str, activity: SenderActivity) -> list[Any]:
    return [
        sender, activity.packets, activity.first_ns, activity.last_ns,
        sorted(activity.dst_ports.items()), sorted(activity.services), activity.mirai_packets,
    ]


def encode_window(partition: int, partitions: int, window: ClosedWindow, max_message_bytes: int) -> list[bytes]:
    """Encode the part of ``window`` from ``partition`` as one or more chunks, each under ``max_message_bytes``."""
    budget = max_message_bytes - _ENVELOPE_BYTES
    chunks: list[dict[str, Any]] = [{"sentences": [], "activity": []}]
    used = 0

    def room_for(size: int) -> None:
        nonlocal used
        if used + size > budget and used > 0:
            chunks.append({"sentences": [], "activity": []})
            used = 0
        used += size

    # 1. Sentences token by token, so one long sentence can span chunks.
    for sentence in window.sentences:
        piece: list[str] | None = None
        for sender in sentence.senders:
            before = len(chunks)
            room_for(len(sender.encode("utf-8")) + 3 + (len(sentence.service) + 8 if piece is None else 0))
            if piece is None or len(chunks) != before:
                piece = []
                chunks[-1]["sentences"].append([sentence.service, piece])
            piece.append(sender)

    # 2. Activity rows whole: one sender's row is small.
    for sender in sorted(window.activity):
        row = _activity_row(sender, window.activity[sender])
        room_for(len(orjson.dumps(row)) + 1)
        chunks[-1]["activity"].append(row)

    envelope = {
        "schema": SCHEMA_VERSION, "type": PART, "partition": partition, "partitions": partitions,
        "window": window.index, "start_ns": window.start_ns, "end_ns": window.end_ns, "chunks": len(chunks),
    }
    return [
        orjson.dumps({
            **envelope, "chunk": number,
            "records": window.records if number == 0 else 0,
            "late_records": window.late_records if number == 0 else 0,
            **body,
        })
        for number, body in enumerate(chunks)
    ]


def decode_message(payload: bytes) -> WindowPart | Progress:
    """Decode one sentences-topic message; raise ``MessageError`` naming what is wrong."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise MessageError(f"sentences message is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise MessageError("sentences message is not a JSON object")
    version = document.get("schema")
    if version != SCHEMA_VERSION:
        raise MessageError(
            f"sentences message has schema version {version!r}, this trainer reads version {SCHEMA_VERSION}: "
            "run workers and trainer of the same release"
        )
    kind = document.get("type")
    try:
        if kind == PROGRESS:
            return _progress(document)
        if kind == PART:
            return _part(document)
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError(f"invalid {kind} message: {type(error).__name__}: {error}") from None
    raise MessageError(f"sentences message type {kind!r} is unknown: expected {PART!r} or {PROGRESS!r}")


# A window part of one partition is split into at most this many chunks,
# about 9 GB at the default message size. A larger count is forged or
# corrupt, and it would keep the window open forever.
MAX_CHUNKS = 10_000


def _integer(document: dict[str, Any], name: str, minimum: int | None = 0, maximum: int | None = None) -> int:
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {name!r} is {value!r}, expected an integer")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"
        raise ValueError(f"field {name!r} is {value!r}, expected an integer in {bounds}")
    return value


def _progress(document: dict[str, Any]) -> Progress:
    final = document.get("final", False)
    if not isinstance(final, bool):
        raise ValueError(f"field 'final' is {final!r}, expected true or false")
    return Progress(
        partition=_integer(document, "partition"),
        partitions=_integer(document, "partitions", 1),
        closed_through=_integer(document, "closed_through", -1),
        final=final,
    )


def _part(document: dict[str, Any]) -> WindowPart:
    chunks = _integer(document, "chunks", 1, MAX_CHUNKS)
    chunk = _integer(document, "chunk")
    if chunk >= chunks:
        raise ValueError(f"chunk {chunk} is outside 0..{chunks - 1}")
    sentences = tuple((str(service), tuple(map(str, senders))) for service, senders in document["sentences"])
    activity = tuple(
        (str(sender), SenderActivity(
            packets=int(packets), first_ns=int(first_ns), last_ns=int(last_ns),
            dst_ports={int(port): int(count) for port, count in ports},
            services=set(map(str, services)), mirai_packets=int(mirai),
        ))
        for sender, packets, first_ns, last_ns, ports, services, mirai in document["activity"]
    )
    return WindowPart(
        partition=_integer(document, "partition"),
        partitions=_integer(document, "partitions", 1),
        window=_integer(document, "window", None),
        start_ns=_integer(document, "start_ns", None),
        end_ns=_integer(document, "end_ns", None),
        chunk=chunk,
        chunks=chunks,
        records=_integer(document, "records"),
        late_records=_integer(document, "late_records"),
        sentences=sentences,
        activity=activity,
    )
