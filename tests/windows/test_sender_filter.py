"""Tests of the count-min sender filter: threshold, horizon, bound, memory, state."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.sender_filter import SenderFilter, sender_hashes

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS


def test_threshold_counts_this_window() -> None:
    sender_filter = SenderFilter(min_packets=10, width=4096)
    assert sender_filter.update(0, ["192.0.2.1", "192.0.2.2"], [9, 10]).tolist() == [False, True]
    assert sender_filter.update(HOUR_NS, ["192.0.2.1"], [1]).tolist() == [True]


def test_packets_expire_after_horizon() -> None:
    sender_filter = SenderFilter(min_packets=10, horizon_s=2 * 86400, bucket_s=86400, width=4096)
    sender_filter.update(0, ["192.0.2.1"], [9])
    # Day 2 still counts day 0 (horizon of 2 buckets before the current one).
    assert sender_filter.update(2 * DAY_NS, ["192.0.2.1"], [1]).tolist() == [True]
    assert sender_filter.estimate(3 * DAY_NS, ["192.0.2.1"]).tolist() == [1]
    assert sender_filter.update(4 * DAY_NS, ["192.0.2.1"], [1]).tolist() == [False]


def test_rejects_window_older_than_horizon() -> None:
    sender_filter = SenderFilter(min_packets=10, horizon_s=2 * 86400, bucket_s=86400, width=64)
    sender_filter.update(3 * DAY_NS, ["192.0.2.1"], [1])
    with pytest.raises(ValueError, match="ascending order"):
        sender_filter.update(0, ["192.0.2.1"], [1])


def test_min_packets_one_keeps_everyone() -> None:
    sender_filter = SenderFilter(min_packets=1)
    assert sender_filter.memory_bytes == 0
    assert sender_filter.update(0, ["192.0.2.1", "192.0.2.2"], [1, 3]).tolist() == [True, True]


def test_empty_window_passes_nobody() -> None:
    sender_filter = SenderFilter(width=64)
    assert sender_filter.update(0, [], []).tolist() == []


def test_rejects_mismatched_counts() -> None:
    with pytest.raises(ValueError, match="2 senders"):
        SenderFilter(width=64).update(0, ["a", "b"], [1])


@pytest.mark.parametrize(
    "arguments",
    [
        {"min_packets": 0},
        {"min_packets": True},
        {"width": 0},
        {"depth": 17},
        {"horizon_s": 0},
        {"bucket_s": -5},
        {"bucket_s": float("inf")},
        {"horizon_s": 1e-12},
    ],
)
def test_rejects_invalid_settings(arguments: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="sender filter"):
        SenderFilter(**arguments)  # type: ignore[arg-type]


def test_counter_dtype_follows_threshold() -> None:
    assert SenderFilter(min_packets=10, width=8).counters.dtype == np.uint8
    assert SenderFilter(min_packets=1000, width=8).counters.dtype == np.uint16
    assert SenderFilter(min_packets=100_000, width=8).counters.dtype == np.uint32


# A tiny sketch forces collisions, which is where an undercount would hide.
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6)), max_size=25)),
        min_size=1,
        max_size=12,
    ),
    st.integers(2, 12),
)
def test_sketch_never_undercounts(windows: list[tuple[int, list[tuple[int, int]]]], min_packets: int) -> None:
    sender_filter = SenderFilter(min_packets=min_packets, horizon_s=3 * 86400, bucket_s=86400, width=7, depth=2)
    history: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hour = 0
    for hours_later, sends in windows:
        hour += hours_later
        start_ns = hour * HOUR_NS
        window: dict[str, int] = defaultdict(int)
        for sender_number, packets in sends:
            window[f"10.0.0.{sender_number}"] += packets
        senders = list(window)
        passed = sender_filter.update(start_ns, senders, [window[s] for s in senders])
        day = start_ns // DAY_NS
        for sender in senders:
            history[day][sender] += window[sender]
        estimates = sender_filter.estimate(start_ns, senders)
        for sender, passes, estimate in zip(senders, passed.tolist(), estimates.tolist()):
            # Per bucket the sketch saturates at min_packets, so compare against that.
            true_capped = sum(min(history[d][sender], min_packets) for d in range(day - 3, day + 1))
            assert estimate >= true_capped
            true_total = sum(history[d][sender] for d in range(day - 3, day + 1))
            if true_total >= min_packets:
                assert passes


def test_wide_sketch_is_exact_on_small_input() -> None:
    rng = np.random.default_rng(3)
    senders = [f"198.51.100.{i}" for i in range(200)]
    packets = rng.integers(1, 20, size=200)
    passed = SenderFilter(min_packets=10, width=1 << 16, depth=4).update(0, senders, packets)
    assert passed.tolist() == (packets >= 10).tolist()


def test_flood_keeps_memory_constant() -> None:
    sender_filter = SenderFilter(min_packets=10, horizon_s=3 * 86400, bucket_s=86400, width=1 << 12, depth=4)
    shape_before = sender_filter.counters.shape
    bytes_before = sender_filter.memory_bytes
    for hour in range(0, 5 * 24, 12):
        senders = [f"spoof-{hour}-{i}" for i in range(50_000)]
        sender_filter.update(hour * HOUR_NS, senders, np.ones(len(senders), dtype=np.int64))
    assert sender_filter.counters.shape == shape_before == (4, 4, 1 << 12)
    assert sender_filter.memory_bytes == bytes_before


def test_hashes_stable_across_processes() -> None:
    script = (
        "from darkvec_stream.windows.sender_filter import sender_hashes;"
        "print(sender_hashes(['192.0.2.1', 'src_ipaddr9'], 4).tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {str(sender_hashes(["192.0.2.1", "src_ipaddr9"], 4).tolist()) + "\n"}


def test_hash_rows_are_independent() -> None:
    hashes = sender_hashes([f"10.1.{i // 256}.{i % 256}" for i in range(5000)], 4) % 1024
    for row in range(1, 4):
        assert np.mean(hashes[:, 0] == hashes[:, row]) < 0.01


def test_save_load_restores_decisions(tmp_path: Path) -> None:
    original = SenderFilter(min_packets=5, width=512, depth=3)
    original.update(0, ["a", "b", "c"], [2, 4, 1])
    original.save(tmp_path)
    restored = SenderFilter(min_packets=5, width=512, depth=3)
    restored.load(tmp_path)
    assert np.array_equal(restored.counters, original.counters)
    assert restored.update(HOUR_NS, ["a", "b"], [3, 1]).tolist() == original.update(HOUR_NS, ["a", "b"], [3, 1]).tolist()


def test_load_rejects_other_settings(tmp_path: Path) -> None:
    SenderFilter(min_packets=5, width=512).save(tmp_path)
    with pytest.raises(StateError, match="same sender filter settings"):
        SenderFilter(min_packets=5, width=1024).load(tmp_path)


def test_load_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="unreadable sender filter state"):
        SenderFilter(width=64).load(tmp_path)
