"""SenderHistory: totals, bounded windows and ports, forget, save and load."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.query import SenderHistory
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

HOUR_NS = 3_600_000_000_000


def window(index: int, activity: dict[str, dict[int, int]]) -> ClosedWindow:
    start = index * HOUR_NS
    senders = {
        sender: SenderActivity(
            packets=sum(ports.values()), first_ns=start + 1, last_ns=start + 2,
            dst_ports=dict(ports), services={f"p{port}" for port in ports},
        )
        for sender, ports in activity.items()
    }
    return ClosedWindow(index, start, start + HOUR_NS, (), senders, sum(s.packets for s in senders.values()),
                        len(senders), 0)


def test_totals_and_activity_per_window() -> None:
    history = SenderHistory(max_windows=4)
    history.observe(window(10, {"192.0.2.1": {23: 3}}))
    history.observe(window(12, {"192.0.2.1": {23: 1, 2323: 4}, "192.0.2.2": {80: 1}}))
    summary = history.get("192.0.2.1")
    assert summary is not None
    assert (summary.packets, summary.windows_active) == (8, 2)
    assert summary.first_seen_ns == 10 * HOUR_NS + 1
    assert summary.last_seen_ns == 12 * HOUR_NS + 2
    assert summary.ports == {23: 4, 2323: 4}
    assert summary.activity == {10: 3, 12: 5}
    spans, matrix = history.activity_matrix(["192.0.2.1", "192.0.2.2", "198.51.100.9"])
    assert [span.index for span in spans] == [10, 12]
    assert matrix.tolist() == [[3, 5], [0, 1], [0, 0]]


def test_old_windows_fall_out_and_ports_stay_bounded() -> None:
    history = SenderHistory(max_windows=2, max_ports=2)
    for index in range(5):
        history.observe(window(index, {"192.0.2.1": {1000 + index: 1, 22: 5}}))
    summary = history.get("192.0.2.1")
    assert summary is not None
    assert [span.index for span in history.windows] == [3, 4]
    assert set(summary.activity) == {3, 4}
    assert len(summary.ports) == 2
    assert summary.ports[22] == 25
    assert summary.packets == 30


def test_out_of_order_window_is_ignored() -> None:
    history = SenderHistory()
    history.observe(window(5, {"192.0.2.1": {23: 1}}))
    history.observe(window(4, {"192.0.2.1": {23: 7}}))
    assert history.get("192.0.2.1").packets == 1


def test_forget_drops_senders() -> None:
    history = SenderHistory()
    history.observe(window(1, {"192.0.2.1": {23: 1}, "192.0.2.2": {23: 1}}))
    history.forget(["192.0.2.1", "203.0.113.5"])
    assert "192.0.2.1" not in history
    assert len(history) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                st.dictionaries(st.integers(0, 65535), st.integers(1, 9), min_size=1, max_size=4),
                                max_size=3), max_size=8))
def test_save_then_load_gives_the_same_history(tmp_path_factory: pytest.TempPathFactory,
                                               windows: list[dict[str, dict[int, int]]]) -> None:
    history = SenderHistory(max_windows=3, max_ports=2)
    for index, activity in enumerate(windows):
        history.observe(window(index, activity))
    directory = tmp_path_factory.mktemp("history")
    history.save(directory)
    restored = SenderHistory(max_windows=3, max_ports=2)
    restored.load(directory)
    assert restored.windows == history.windows
    assert {s: restored.get(s) for s in restored.senders()} == {s: history.get(s) for s in history.senders()}


def test_corrupt_state_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "history.json").write_text("{not json")
    with pytest.raises(StateError, match="history.json"):
        SenderHistory().load(tmp_path)


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_windows 0"):
        SenderHistory(max_windows=0)
