"""Tests of the windower: assignment, watermark, lateness, sentences, offsets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_SYN, Record
from darkvec_stream.windows import ClosedWindow, SenderFilter, Windower, make_services

S = 10**9
KEEP_ALL = SenderFilter(min_packets=1)


def rec(ts_s: float, src: str, port: int | None = 23, proto: int | None = PROTO_TCP, **fields: object) -> Record:
    return Record(ts_ns=int(ts_s * S), src=src, dst_port=port, proto=proto, **fields)  # type: ignore[arg-type]


def windower(**arguments: object) -> Windower:
    settings: dict[str, object] = {
        "window_s": 60,
        "lateness_s": 10,
        "services": make_services("domain"),
        "sender_filter": KEEP_ALL,
    }
    settings.update(arguments)
    return Windower(**settings)  # type: ignore[arg-type]


def feed(target: Windower, records: list[Record]) -> list[ClosedWindow]:
    closed: list[ClosedWindow] = []
    for record in records:
        closed.extend(target.add(record))
    return closed


def sentences_of(window: ClosedWindow) -> dict[str, tuple[str, ...]]:
    return {sentence.service: sentence.senders for sentence in window.sentences}


def test_window_closes_when_watermark_reaches_end() -> None:
    target = windower()
    assert target.add(rec(5, "a")) == []
    assert target.add(rec(69, "b")) == []
    closed = target.add(rec(70, "c"))
    assert [window.index for window in closed] == [0]
    assert (closed[0].start_ns, closed[0].end_ns) == (0, 60 * S)
    assert target.watermark_ns == 60 * S
    assert target.open_windows == [1]


def test_record_within_lateness_lands_in_its_window() -> None:
    target = windower()
    feed(target, [rec(5, "a"), rec(65, "b"), rec(58, "c")])
    (window,) = target.add(rec(75, "d"))
    assert sentences_of(window) == {"telnet": ("a", "c")}
    assert window.records == 2


def test_late_record_goes_to_callback_only() -> None:
    late: list[tuple[Record, object]] = []
    target = windower(on_late=lambda record, position: late.append((record, position)))
    feed(target, [rec(5, "a"), rec(100, "b")])
    too_old = rec(89, "c")
    assert target.add(too_old, ("telemetry", 0, 7)) == []
    assert late == [(too_old, ("telemetry", 0, 7))]
    assert target.late_records == 1
    (window,) = target.flush()
    assert window.index == 1
    assert "c" not in window.activity
    assert window.late_records == 1


def test_late_count_resets_per_close() -> None:
    target = windower()
    feed(target, [rec(5, "a"), rec(100, "b"), rec(1, "late1"), rec(2, "late2")])
    closed = feed(target, [rec(130, "c")])
    assert [w.late_records for w in closed] == [2]
    assert [w.late_records for w in target.flush()] == [0]


def test_flush_then_old_record_is_late() -> None:
    target = windower()
    feed(target, [rec(5, "a"), rec(30, "b")])
    assert [window.index for window in target.flush()] == [0]
    assert target.add(rec(31, "c")) == []
    assert target.late_records == 1
    assert target.flush() == []


def test_flush_watermark_never_goes_back() -> None:
    target = windower()
    feed(target, [rec(5, "a")])
    assert [window.index for window in target.flush()] == [0]
    assert target.add(rec(65, "b")) == []
    assert target.watermark_ns == 60 * S
    assert target.add(rec(58, "c")) == []
    assert target.late_records == 1
    assert [window.index for window in target.flush()] == [1]


def test_consecutive_repeats_collapse() -> None:
    target = windower()
    feed(target, [rec(1, "a"), rec(2, "a"), rec(3, "b"), rec(4, "a"), rec(5, "a")])
    (window,) = target.flush()
    assert sentences_of(window) == {"telnet": ("a", "b", "a")}
    assert window.words == 3
    assert window.activity["a"].packets == 4


def test_exact_duplicate_changes_packets_not_sentence() -> None:
    records = [rec(1, "a"), rec(2, "b"), rec(3, "a")]
    once, twice = windower(), windower()
    feed(once, records)
    feed(twice, records + [records[1]])
    (window_once,) = once.flush()
    (window_twice,) = twice.flush()
    assert window_once.sentences == window_twice.sentences
    assert window_twice.activity["b"].packets == 2
    assert window_twice.records == 4


def test_services_split_sentences_in_name_order() -> None:
    target = windower()
    feed(
        target,
        [
            rec(1, "a", 445),
            rec(2, "b", 23),
            rec(3, "c", 445),
            rec(4, "d", None, PROTO_ICMP),
            rec(5, "e", 53, PROTO_UDP),
            rec(6, "a", 2000),
        ],
    )
    (window,) = target.flush()
    assert [sentence.service for sentence in window.sentences] == ["dns", "icmp", "smb", "tcp-user", "telnet"]
    assert sentences_of(window)["smb"] == ("a", "c")
    assert window.activity["a"].services == {"smb", "tcp-user"}
    assert window.activity["a"].dst_ports == {445: 1, 2000: 1}


def test_activity_fields() -> None:
    target = windower()
    mirai_syn = rec(10, "m", dst="192.0.2.1", tcp_flags=TCP_SYN, tcp_seq=0xC0000201, packets=3)
    plain_syn = rec(20, "m", dst="192.0.2.1", tcp_flags=TCP_SYN, tcp_seq=5)
    flagged = rec(30, "m", 80, mirai=True)
    feed(target, [plain_syn, mirai_syn, flagged])
    (window,) = target.flush()
    activity = window.activity["m"]
    assert activity.packets == 5
    assert (activity.first_ns, activity.last_ns) == (10 * S, 30 * S)
    assert activity.dst_ports == {23: 4, 80: 1}
    assert activity.mirai_packets == 4


def test_sender_filter_drops_quiet_senders() -> None:
    target = windower(sender_filter=SenderFilter(min_packets=3, width=1024))
    feed(target, [rec(1, "busy"), rec(2, "quiet"), rec(3, "busy"), rec(4, "busy", packets=1)])
    (window,) = target.flush()
    assert sentences_of(window) == {"telnet": ("busy",)}
    assert set(window.activity) == {"busy"}
    assert window.records == 4
    assert window.senders_seen == 2


def test_windows_close_in_order_after_gap() -> None:
    target = windower()
    feed(target, [rec(5, "a"), rec(65, "b"), rec(50, "c")])
    closed = target.add(rec(1000, "d"))
    assert [window.index for window in closed] == [0, 1]


def test_close_logged_once_per_window(caplog: pytest.LogCaptureFixture) -> None:
    target = windower()
    with caplog.at_level(logging.INFO, logger="darkvec_stream.windows.windower"):
        feed(target, [rec(5, "a"), rec(6, "b"), rec(200, "c")])
        target.flush()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("closed window 1970-01-01T00:00:00Z: 2 records, 2 senders seen")
    assert "0 late records" in messages[0]


def test_offsets_committable_and_consumed() -> None:
    target = windower()
    target.add(rec(5, "a"), ("t", 0, 10))
    target.add(rec(65, "b"), ("t", 0, 11))
    target.add(rec(66, "c"), ("t", 1, 3))
    assert target.consumed_offsets() == {("t", 0): 12, ("t", 1): 4}
    assert target.committable_offsets() == {("t", 0): 10, ("t", 1): 3}
    target.add(rec(75, "d"), ("t", 0, 12))  # closes window 0
    assert target.committable_offsets() == {("t", 0): 11, ("t", 1): 3}
    target.flush()
    assert target.committable_offsets() == {("t", 0): 13, ("t", 1): 4}


def test_late_and_rejected_offsets_are_committable() -> None:
    target = windower()
    target.add(rec(100, "a"), ("t", 0, 1))
    target.flush()
    target.add(rec(5, "late"), ("t", 0, 2))
    target.mark_consumed(("t", 0, 3))
    assert target.committable_offsets() == {("t", 0): 4}


def test_replayed_offsets_are_dropped() -> None:
    target = windower()
    target.add_many([rec(1, "a"), rec(2, "b")], ("t", 0, 5))
    target.add_many([rec(3, "c")], ("t", 0, 6))
    assert target.add_many([rec(1, "a"), rec(2, "b")], ("t", 0, 5)) == []
    assert target.add(rec(2, "x"), ("t", 0, 4)) == []
    assert target.replayed_records == 3
    (window,) = target.flush()
    assert window.records == 3


def test_add_many_returns_closed_windows() -> None:
    target = windower()
    closed = target.add_many([rec(5, "a"), rec(65, "b"), rec(125, "c")], None)
    assert [window.index for window in closed] == [0]


@pytest.mark.parametrize(
    "arguments",
    [{"window_s": 0}, {"window_s": 1.5}, {"window_s": "60"}, {"lateness_s": -1}, {"lateness_s": float("nan")}, {"window_s": True}],
)
def test_rejects_invalid_settings(arguments: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="whole number of seconds"):
        windower(**arguments)


def test_default_components() -> None:
    target = Windower()
    assert target.services.mode == "auto"
    assert target.sender_filter.min_packets == 10
    assert target.watermark_ns is None


def test_load_rejects_other_window(tmp_path: Path) -> None:
    original = windower(sender_filter=SenderFilter(width=64))
    original.add(rec(5, "a"))
    original.save(tmp_path)
    with pytest.raises(StateError, match="same window_s and lateness_s"):
        windower(window_s=120, sender_filter=SenderFilter(width=64)).load(tmp_path)


def test_load_reports_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="unreadable windower state"):
        windower().load(tmp_path)


def test_load_reports_corrupt_records(tmp_path: Path) -> None:
    original = windower(sender_filter=SenderFilter(width=64))
    original.add(rec(5, "a"))
    original.save(tmp_path)
    for rows in ('[[0, [[1, "a", null, null, 23, 6, null, null, null, null, 1, null, 99]]]]', '[[0, [["1", "a"]]]]', "{}"):
        (tmp_path / "windower_records.json").write_text(rows)
        with pytest.raises(StateError, match="open-window records"):
            windower(sender_filter=SenderFilter(width=64)).load(tmp_path)
