"""MiraiSource: the packet threshold, expiry, the size bound and exact save/restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.labels.mirai import MiraiSource
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

HOUR_NS = 3_600_000_000_000


def window(index: int, senders: dict[str, int]) -> ClosedWindow:
    start_ns = index * HOUR_NS
    activity = {
        sender: SenderActivity(packets=max(count, 1), first_ns=start_ns, last_ns=start_ns + 10, mirai_packets=count)
        for sender, count in senders.items()
    }
    return ClosedWindow(index, start_ns, start_ns + HOUR_NS, (), activity, 100, len(senders), 0)


def test_one_packet_labels_by_default() -> None:
    source = MiraiSource()
    assert source.observe(window(0, {"192.0.2.1": 1, "192.0.2.2": 0})) == ["192.0.2.1"]
    assert source.label_of("192.0.2.1") == "mirai"
    assert source.label_of("192.0.2.2") is None
    assert len(source) == 1


def test_min_packets_accumulates_across_windows() -> None:
    source = MiraiSource(min_packets=3)
    assert source.observe(window(0, {"192.0.2.1": 2})) == []
    assert source.label_of("192.0.2.1") is None
    assert source.observe(window(1, {"192.0.2.1": 1})) == ["192.0.2.1"]
    assert source.observe(window(2, {"192.0.2.1": 5})) == []  # already labelled: not new again
    assert source.label_of("192.0.2.1") == "mirai"


def test_senders_expire_after_horizon() -> None:
    source = MiraiSource(expiry_s=2 * 3600)
    source.observe(window(0, {"192.0.2.1": 1, "192.0.2.2": 1}))  # both last seen just after 0 h
    source.observe(window(1, {"192.0.2.2": 0}))  # seen again without the fingerprint: stays fresh
    assert source.label_of("192.0.2.1") == "mirai"  # window end 2 h: seen within 2 h
    source.observe(window(2, {}))
    assert source.label_of("192.0.2.1") is None  # window end 3 h: not seen for more than 2 h
    assert source.label_of("192.0.2.2") == "mirai"
    assert source.expired == 1


def test_size_bound_evicts_least_recently_seen() -> None:
    source = MiraiSource(max_senders=2)
    source.observe(window(0, {"192.0.2.1": 1}))
    source.observe(window(1, {"192.0.2.2": 1}))
    source.observe(window(2, {"192.0.2.1": 0, "192.0.2.3": 1}))
    assert source.senders() == ["192.0.2.1", "192.0.2.3"]
    assert source.evicted == 1


def test_anonymised_tokens_are_labelled() -> None:
    source = MiraiSource()
    source.observe(window(0, {"src_ipaddr12": 4}))
    assert source.label_of("src_ipaddr12") == "mirai"


def test_save_load_continues_identically(tmp_path: Path) -> None:
    stream = [
        {"192.0.2.1": 1, "192.0.2.2": 0},
        {"192.0.2.3": 2, "192.0.2.2": 1},
        {"192.0.2.4": 1},
        {"192.0.2.1": 0, "192.0.2.5": 1},
        {},
        {"192.0.2.6": 1},
    ]
    straight = MiraiSource(min_packets=1, expiry_s=3 * 3600, max_senders=3)
    for index, senders in enumerate(stream):
        straight.observe(window(index, senders))

    interrupted = MiraiSource(min_packets=1, expiry_s=3 * 3600, max_senders=3)
    for index, senders in enumerate(stream[:3]):
        interrupted.observe(window(index, senders))
    interrupted.save(tmp_path / "mirai")
    restored = MiraiSource.from_directory(tmp_path / "mirai")
    for index, senders in enumerate(stream[3:], start=3):
        restored.observe(window(index, senders))

    assert restored.senders() == straight.senders()
    assert restored.expired == straight.expired
    assert restored.evicted == straight.evicted
    restored.save(tmp_path / "a")
    straight.save(tmp_path / "b")
    assert (tmp_path / "a" / "mirai.json").read_bytes() == (tmp_path / "b" / "mirai.json").read_bytes()


def test_corrupt_state_raises(tmp_path: Path) -> None:
    (tmp_path / "mirai.json").write_text("{not json")
    with pytest.raises(StateError, match="corrupt"):
        MiraiSource().load(tmp_path)
    with pytest.raises(StateError, match="missing"):
        MiraiSource().load(tmp_path / "absent")


def test_settings_validated() -> None:
    with pytest.raises(ConfigError, match="min_packets"):
        MiraiSource(min_packets=0)
    with pytest.raises(ConfigError, match="expiry_s"):
        MiraiSource(expiry_s=0)
