"""Merging per-partition window parts and the completeness rule of the assembler."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from darkvec_stream.errors import StateError
from darkvec_stream.ingest.record import Record
from darkvec_stream.scaleout.assembly import ALREADY_PROCESSED, DUPLICATE, WindowAssembler, merge_parts
from darkvec_stream.scaleout.messages import (
    MessageError, Progress, decode_message, encode_progress, encode_window,
)
from darkvec_stream.scaleout.routing import ServiceRouter
from darkvec_stream.windows import DomainServices, SenderFilter, close_window

WINDOW_NS = 60 * 10**9
PORTS = [(23, 6), (22, 6), (80, 6), (443, 6), (53, 17), (445, 6), (3389, 6), (None, 1), (5060, 17), (40000, 6)]

record_strategy = st.builds(
    lambda ts, sender, port, packets, seq: Record(
        ts_ns=ts, src=f"192.0.2.{sender}", dst="198.51.100.7", dst_port=PORTS[port][0], proto=PORTS[port][1],
        tcp_flags=2 if PORTS[port][1] == 6 else None, tcp_seq=seq, packets=packets,
    ),
    st.integers(0, WINDOW_NS - 1), st.integers(1, 12), st.integers(0, len(PORTS) - 1), st.integers(1, 3),
    st.sampled_from([None, 1, 3325256711]),  # 3325256711 is 198.51.100.7 as an integer: a Mirai SYN
)


def _parts(records, partitions, max_message_bytes=900_000):
    router = ServiceRouter(DomainServices(), partitions)
    payloads = []
    for partition, group in router.split(records).items():
        window = close_window(0, WINDOW_NS, group, DomainServices(), SenderFilter(min_packets=1), 0)
        payloads += encode_window(partition, partitions, window, max_message_bytes)
    return payloads


def _window_tuple(window):
    activity = {
        sender: (a.packets, a.first_ns, a.last_ns, list(a.dst_ports.items()), set(a.services), a.mirai_packets)
        for sender, a in window.activity.items()
    }
    return (window.index, window.start_ns, window.end_ns, window.sentences, activity,
            window.records, window.senders_seen, list(window.activity))


@settings(max_examples=60, deadline=None)
@given(st.lists(record_strategy, min_size=1, max_size=80), st.integers(1, 5), st.integers(1, 4),
       st.sampled_from([900_000, 1200]))
def test_merge_equals_one_windower(records, partitions, min_packets, max_message_bytes):
    expected = close_window(0, WINDOW_NS, records, DomainServices(), SenderFilter(min_packets=min_packets, width=512), 0)
    parts = [decode_message(payload) for payload in _parts(records, partitions, max_message_bytes)]
    random.Random(len(records)).shuffle(parts)
    merged = merge_parts(0, parts, SenderFilter(min_packets=min_packets, width=512))
    assert _window_tuple(merged) == _window_tuple(expected)


def test_long_sentence_spans_chunks():
    records = [Record(ts_ns=i, src=f"10.0.{i // 250}.{i % 250}", dst_port=23, proto=6) for i in range(3000)]
    payloads = _parts(records, 1, max_message_bytes=10_000)
    assert len(payloads) > 5
    assert all(len(payload) <= 10_000 for payload in payloads)
    merged = merge_parts(0, [decode_message(p) for p in payloads], SenderFilter(min_packets=1))
    assert merged.sentences[0].senders == tuple(record.src for record in records)


def _feed(assembler, payloads):
    released = []
    for payload in payloads:
        assembler.add(payload)
        released += [(ready.index, tuple(sorted((p.partition, p.chunk) for p in ready.parts))) for ready in assembler.ready()]
    return released


def _stream(partitions, windows, seed):
    """Messages of each partition in order: parts of windows it has, then progress."""
    rng = random.Random(seed)
    per_partition = []
    for partition in range(partitions):
        messages = []
        for index in range(windows):
            if rng.random() < 0.7:
                records = [Record(ts_ns=index * WINDOW_NS + 5, src="192.0.2.1", dst_port=23, proto=6)]
                window = close_window(index, WINDOW_NS, records, DomainServices(), SenderFilter(min_packets=1), 0)
                messages += encode_window(partition, partitions, window, 900_000)
            messages.append(encode_progress(Progress(partition, partitions, index)))
        per_partition.append(messages)
    return per_partition


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 10**6), st.integers(0, 10**6), st.booleans())
def test_any_interleaving_same_windows(partitions, windows, seed, order_seed, repeat):
    streams = _stream(partitions, windows, seed)
    reference = _feed(WindowAssembler(partitions, 3600), [m for stream in streams for m in stream])
    rng = random.Random(order_seed)
    queues = [list(stream) for stream in streams]
    if repeat:
        # A failover re-sends a partition's tail after what was already sent.
        victim = rng.randrange(partitions)
        queues[victim] += queues[victim][rng.randrange(len(queues[victim])):]
    interleaved = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        interleaved.append(queue.pop(0))
    assert _feed(WindowAssembler(partitions, 3600), interleaved) == reference


def test_window_waits_for_every_partition():
    now = [0.0]
    assembler = WindowAssembler(2, idle_timeout_s=30, clock=lambda: now[0])
    records = [Record(ts_ns=5, src="192.0.2.1", dst_port=23, proto=6)]
    window = close_window(0, WINDOW_NS, records, DomainServices(), SenderFilter(min_packets=1), 0)
    for payload in encode_window(0, 2, window, 900_000):
        assembler.add(payload)
    assembler.add(encode_progress(Progress(0, 2, 0)))
    assert assembler.ready() == []
    assembler.add(encode_progress(Progress(1, 2, 0)))
    assert [ready.index for ready in assembler.ready()] == [0]


def test_idle_partition_released_after_timeout():
    now = [0.0]
    assembler = WindowAssembler(2, idle_timeout_s=30, clock=lambda: now[0])
    records = [Record(ts_ns=5, src="192.0.2.1", dst_port=23, proto=6)]
    window = close_window(0, WINDOW_NS, records, DomainServices(), SenderFilter(min_packets=1), 0)
    payloads = encode_window(0, 2, window, 900_000)
    now[0] = 100.0
    assembler.add(payloads[0])
    assembler.add(encode_progress(Progress(0, 2, 0)))
    assert assembler.ready() == []  # partition 1 starts blocking now
    now[0] = 129.0
    assert assembler.ready() == []
    now[0] = 130.0
    ready = assembler.ready()
    assert [r.index for r in ready] == [0]
    assert ready[0].idle_partitions == (1,)
    late = encode_window(1, 2, window, 900_000)[0]
    assert assembler.add(late) == ALREADY_PROCESSED


def test_duplicate_chunk_dropped():
    assembler = WindowAssembler(1, 30)
    records = [Record(ts_ns=5, src="192.0.2.1", dst_port=23, proto=6)]
    window = close_window(0, WINDOW_NS, records, DomainServices(), SenderFilter(min_packets=1), 0)
    payload = encode_window(0, 1, window, 900_000)[0]
    assembler.add(payload)
    assert assembler.add(payload) == DUPLICATE
    assert assembler.counts[DUPLICATE] == 1


def test_state_round_trip_keeps_pending():
    streams = _stream(3, 4, seed=3)
    first = WindowAssembler(3, 3600)
    for message in streams[0] + streams[1]:
        first.add(message)
    restored = WindowAssembler(3, 3600)
    restored.load(first.save())
    assert restored.pending_windows == first.pending_windows
    for message in streams[2]:
        first.add(message)
        restored.add(message)
    assert [(r.index, r.parts) for r in restored.ready()] == [(r.index, r.parts) for r in first.ready()]


def test_state_for_other_partition_count_rejected():
    with pytest.raises(StateError, match="new topic"):
        WindowAssembler(2, 30).load(WindowAssembler(3, 30).save())


@pytest.mark.parametrize("payload, message", [
    (b"not json", "not JSON"),
    (b'{"schema": 2, "type": "part"}', "schema version 2"),
    (b'{"schema": 1, "type": "gossip"}', "type 'gossip' is unknown"),
    (b'{"schema": 1, "type": "progress", "partition": 0, "partitions": 1}', "closed_through"),
])
def test_bad_message_rejected(payload, message):
    with pytest.raises(MessageError, match=message):
        decode_message(payload)


def test_partition_count_mismatch_rejected():
    with pytest.raises(MessageError, match="partition count must not change"):
        WindowAssembler(4, 30).add(encode_progress(Progress(0, 2, 0)))


def test_forged_bounds_are_rejected() -> None:
    import orjson
    import pytest as _pytest

    from darkvec_stream.scaleout.messages import (
        MAX_CHUNKS, PART, PROGRESS, SCHEMA_VERSION, MessageError, decode_message,
    )

    part = {"schema": SCHEMA_VERSION, "type": PART, "partition": 0, "partitions": 4, "window": 7, "start_ns": 0,
            "end_ns": 60, "chunk": 0, "chunks": MAX_CHUNKS + 1, "records": 1, "late_records": 0,
            "sentences": [], "activity": []}
    with _pytest.raises(MessageError, match="chunks"):
        decode_message(orjson.dumps(part))
    progress = {"schema": SCHEMA_VERSION, "type": PROGRESS, "partition": 0, "partitions": 4, "closed_through": -5,
                "final": True}
    with _pytest.raises(MessageError, match="closed_through"):
        decode_message(orjson.dumps(progress))
