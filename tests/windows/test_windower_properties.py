"""Property tests of window assignment, lateness, arrival order and restore."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_SYN, Record
from darkvec_stream.windows import ClosedWindow, SenderFilter, Windower, is_mirai, make_services, service_key
from darkvec_stream.windows.services import KEY_COUNT

S = 10**9
WINDOW_S = 10
LATENESS_S = 3
WINDOW_NS = WINDOW_S * S
LATENESS_NS = LATENESS_S * S

PORTS = [(PROTO_TCP, 23), (PROTO_TCP, 445), (PROTO_TCP, 4444), (PROTO_UDP, 53), (PROTO_ICMP, None), (PROTO_TCP, None)]

records_strategy = st.lists(
    st.builds(
        lambda ts_ms, sender, port, flags, packets: Record(
            ts_ns=ts_ms * 1_000_000,
            src=f"10.0.0.{sender}",
            dst="192.0.2.1",
            dst_port=PORTS[port][1],
            proto=PORTS[port][0],
            tcp_flags=flags,
            tcp_seq=0xC0000201 if flags == TCP_SYN else None,
            packets=packets,
        ),
        # Whole seconds make ties and records exactly at the watermark common.
        st.integers(0, 60).map(lambda ts_s: ts_s * 1000) | st.integers(0, 60_000),
        st.integers(0, 5),
        st.integers(0, len(PORTS) - 1),
        st.sampled_from([None, TCP_SYN]),
        st.integers(1, 3),
    ),
    max_size=120,
)


def make_windower(services_mode: str = "auto", min_packets: int = 2, on_late=None) -> Windower:  # type: ignore[no-untyped-def]
    return Windower(
        window_s=WINDOW_S,
        lateness_s=LATENESS_S,
        services=make_services(services_mode, top_n=2, half_life_s=20),
        sender_filter=SenderFilter(min_packets=min_packets, horizon_s=30, bucket_s=10, width=16, depth=2),
        on_late=on_late,
    )


def run(windower: Windower, records: list[Record]) -> list[ClosedWindow]:
    closed: list[ClosedWindow] = []
    for record in records:
        closed.extend(windower.add(record))
    return closed + windower.flush()


@settings(max_examples=150, deadline=None)
@given(records_strategy)
def test_assignment_and_lateness(records: list[Record]) -> None:
    late: list[Record] = []
    windower = make_windower("single", min_packets=1, on_late=lambda record, position: late.append(record))
    expected_late: list[Record] = []
    expected_records: dict[int, int] = {}
    max_ts_ns: int | None = None
    closed: list[ClosedWindow] = []
    for record in records:
        watermark_ns = None if max_ts_ns is None else max_ts_ns - LATENESS_NS
        assert windower.watermark_ns == watermark_ns
        is_late = watermark_ns is not None and record.ts_ns < watermark_ns
        if is_late:
            expected_late.append(record)
        else:
            index = record.ts_ns // WINDOW_NS
            expected_records[index] = expected_records.get(index, 0) + 1
            max_ts_ns = record.ts_ns if max_ts_ns is None else max(max_ts_ns, record.ts_ns)
        done = windower.add(record)
        for window in done:
            # A window closes exactly when the watermark reaches its end.
            assert windower.watermark_ns is not None and windower.watermark_ns >= window.end_ns
        assert all(windower.watermark_ns is None or (index + 1) * WINDOW_NS > windower.watermark_ns for index in windower.open_windows)
        closed.extend(done)
    closed.extend(windower.flush())

    assert late == expected_late
    assert windower.late_records == len(expected_late)
    assert [window.index for window in closed] == sorted(expected_records)
    assert {window.index: window.records for window in closed} == expected_records
    for window in closed:
        for activity in window.activity.values():
            assert window.start_ns <= activity.first_ns <= activity.last_ns < window.end_ns


def arrival_within_lateness(records: list[Record], seed: int) -> list[Record]:
    """Shuffle sorted records so that none is late: each may arrive up to the lateness after later ones."""
    rng = random.Random(seed)
    jittered = [(record.ts_ns + rng.randrange(LATENESS_NS + 1), position, record) for position, record in enumerate(records)]
    jittered.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in jittered]


@settings(max_examples=120, deadline=None)
@given(records_strategy, st.integers(0, 2**32), st.sampled_from(["auto", "domain", "hybrid", "single"]))
def test_shuffle_within_lateness_same_windows(records: list[Record], seed: int, mode: str) -> None:
    ordered = sorted(records, key=lambda record: record.ts_ns)
    shuffled = arrival_within_lateness(ordered, seed)
    from_sorted = run(make_windower(mode), ordered)
    from_shuffled = run(make_windower(mode), shuffled)
    assert from_shuffled == from_sorted
    assert all(window.late_records == 0 for window in from_shuffled)
    for window in from_sorted:
        in_sentences = {sender for sentence in window.sentences for sender in sentence.senders}
        assert set(window.activity) == in_sentences
        for sentence in window.sentences:
            assert all(first != second for first, second in zip(sentence.senders, sentence.senders[1:]))


@settings(max_examples=60, deadline=None)
@given(records_strategy, st.integers(0, 120), st.sampled_from(["auto", "hybrid"]))
def test_restored_equals_uninterrupted(records: list[Record], cut: int, mode: str) -> None:
    positioned = [(record, ("telescope", number % 2, number // 2)) for number, record in enumerate(records)]
    cut = min(cut, len(positioned))

    uninterrupted = make_windower(mode)
    expected = [window for record, position in positioned for window in uninterrupted.add(record, position)]
    expected += uninterrupted.flush()

    first = make_windower(mode)
    closed = [window for record, position in positioned[:cut] for window in first.add(record, position)]
    consumed_at_cut = first.consumed_offsets()
    with tempfile.TemporaryDirectory() as directory:
        first.save(Path(directory))
        second = make_windower(mode)
        second.load(Path(directory))
    assert second.consumed_offsets() == consumed_at_cut
    assert second.committable_offsets() == first.committable_offsets()
    assert second.watermark_ns == first.watermark_ns
    closed += [window for record, position in positioned[cut:] for window in second.add(record, position)]
    closed += second.flush()

    assert closed == expected
    assert second.late_records == uninterrupted.late_records
    assert second.committable_offsets() == uninterrupted.committable_offsets()
    assert np.array_equal(second.sender_filter.counters, uninterrupted.sender_filter.counters)
    assert np.array_equal(second.services.decayed_counts, uninterrupted.services.decayed_counts)  # type: ignore[attr-defined]


def reference_window(records: list[Record]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[int, int, int, dict[int, int], set[str], int]]]:
    """Sentences and activity of one window, computed record by record with the scalar helpers."""
    plan = make_services("domain").plan(np.zeros(KEY_COUNT), 0)
    sentences: dict[str, list[str]] = {}
    activity: dict[str, tuple[int, int, int, dict[int, int], set[str], int]] = {}
    for record in sorted(records, key=lambda record: (record.ts_ns, record.src)):
        service = plan.service_of(service_key(record.proto, record.dst_port))
        sentence = sentences.setdefault(service, [])
        if not sentence or sentence[-1] != record.src:
            sentence.append(record.src)
        packets, first_ns, last_ns, ports, services, mirai = activity.get(record.src, (0, record.ts_ns, record.ts_ns, {}, set(), 0))
        if record.dst_port is not None:
            ports[record.dst_port] = ports.get(record.dst_port, 0) + record.packets
        services.add(service)
        mirai += record.packets if is_mirai(record) else 0
        activity[record.src] = (packets + record.packets, min(first_ns, record.ts_ns), max(last_ns, record.ts_ns), ports, services, mirai)
    return {service: tuple(senders) for service, senders in sentences.items()}, activity


@settings(max_examples=100, deadline=None)
@given(records_strategy)
def test_window_matches_reference(records: list[Record]) -> None:
    windower = make_windower("domain", min_packets=1)
    in_window: dict[int, list[Record]] = {}
    closed: list[ClosedWindow] = []
    for record in records:
        before = windower.late_records
        closed.extend(windower.add(record))
        if windower.late_records == before:
            in_window.setdefault(record.ts_ns // WINDOW_NS, []).append(record)
    closed.extend(windower.flush())
    assert [window.index for window in closed] == sorted(in_window)
    for window in closed:
        sentences, activity = reference_window(in_window[window.index])
        assert {sentence.service: sentence.senders for sentence in window.sentences} == sentences
        assert {
            sender: (a.packets, a.first_ns, a.last_ns, a.dst_ports, a.services, a.mirai_packets)
            for sender, a in window.activity.items()
        } == activity


@settings(max_examples=150, deadline=None)
@given(records_strategy, st.lists(st.booleans(), max_size=120), st.integers(0, 2**32))
def test_flush_midway_closes_each_window_once(records: list[Record], flush_before: list[bool], seed: int) -> None:
    # Nearly ordered input makes records just behind a flushed window end common.
    arrivals = arrival_within_lateness(sorted(records, key=lambda record: record.ts_ns), seed)
    windower = make_windower("single", min_packets=1)
    closed: list[ClosedWindow] = []
    for number, record in enumerate(arrivals):
        if number < len(flush_before) and flush_before[number]:
            closed.extend(windower.flush())
        closed.extend(windower.add(record))
    closed.extend(windower.flush())
    indexes = [window.index for window in closed]
    assert indexes == sorted(set(indexes))
    assert sum(window.records for window in closed) + windower.late_records == len(records)
