"""LabelBook lookups, the conflict rule, IPv6, reload without restart and checkpoints."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.labels.book import MIRAI_SOURCE_NAME, LabelBook
from darkvec_stream.labels.mirai import MiraiSource
from darkvec_stream.labels.sources import LabelSource
from darkvec_stream.windows.model import ClosedWindow, SenderActivity


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def mirai_window(index: int, senders: dict[str, int]) -> ClosedWindow:
    start_ns = index * 3_600_000_000_000
    activity = {
        sender: SenderActivity(packets=5, first_ns=start_ns, last_ns=start_ns + 1, mirai_packets=count)
        for sender, count in senders.items()
    }
    return ClosedWindow(index, start_ns, start_ns + 3_600_000_000_000, (), activity, 10, len(senders), 0)


def test_longest_prefix_wins(tmp_path: Path) -> None:
    wide = write(tmp_path / "wide.txt", "10.0.0.0/8\n")
    narrow = write(tmp_path / "narrow.txt", "10.1.0.0/16\n10.1.2.3\n")
    host = write(tmp_path / "host.csv", "ip,label\n10.1.2.3,exact\n")
    book = LabelBook([LabelSource("wide", wide), LabelSource("narrow", narrow), LabelSource("host", host)])
    assert book.label_of("10.9.9.9") == "wide"
    assert book.label_of("10.1.9.9") == "narrow"
    assert book.label_of("10.1.2.3") == "narrow"  # same /32 listed twice: first source listed wins
    assert book.label_of("11.0.0.1") is None
    match = book.match("10.1.9.9")
    assert match is not None
    assert match.network == "10.1.0.0/16"
    assert match.source == "narrow"


def test_priority_beats_specificity(tmp_path: Path) -> None:
    wide = write(tmp_path / "trusted.txt", "10.0.0.0/8\n")
    narrow = write(tmp_path / "noisy.txt", "10.1.2.0/24\n")
    book = LabelBook([LabelSource("noisy", narrow, priority=0), LabelSource("trusted", wide, priority=5)])
    assert book.label_of("10.1.2.3") == "trusted"


def test_first_listed_wins_exact_tie(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "ip,label\n192.0.2.1,censys\n")
    second = write(tmp_path / "b.csv", "ip,label\n192.0.2.1,shodan\n")
    assert LabelBook([LabelSource("a", first), LabelSource("b", second)]).label_of("192.0.2.1") == "censys"
    assert LabelBook([LabelSource("b", second), LabelSource("a", first)]).label_of("192.0.2.1") == "shodan"


def test_conflicts_and_duplicates_counted(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "ip,label\n192.0.2.1,censys\n192.0.2.2,censys\n198.51.100.7,u_mich\n")
    second = write(tmp_path / "b.csv", "ip,label\n192.0.2.1,shodan\n192.0.2.2,censys\n198.51.100.0/24,umich\n")
    book = LabelBook([LabelSource("a", first), LabelSource("b", second)])
    assert book.stats.exact_conflicts == 1
    assert book.stats.duplicates == 1
    assert book.stats.overlap_conflicts == 0  # u_mich inside u_mich: an alias, no conflict
    third = write(tmp_path / "c.txt", "192.0.2.0/24\n")
    book = LabelBook([LabelSource("a", first), LabelSource("c", third, label="rapid7")])
    assert book.stats.overlap_conflicts == 2


def test_ipv6_and_tokens(tmp_path: Path) -> None:
    source = write(tmp_path / "v6.txt", "2001:db8::/32\n2001:db8:1::/48\n192.0.2.0/24\n")
    other = write(tmp_path / "v6host.csv", "ip,label\n2001:db8:1::5,host\n")
    book = LabelBook([LabelSource("v6", source, label="wide"), LabelSource("host", other)])
    assert book.label_of("2001:db8:ffff::1") == "wide"
    assert book.label_of("2001:db8:1::5") == "host"
    assert book.label_of("2001:db9::1") is None
    assert book.label_of("::ffff:192.0.2.9") == "wide"
    assert book.label_of("src_ipaddr3") is None
    assert book.label_of("") is None


def test_labelled_returns_only_labelled(tmp_path: Path) -> None:
    source = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    book = LabelBook([LabelSource("censys", source)])
    assert book.labelled(["192.0.2.1", "198.51.100.1", "192.0.2.2"]) == {"192.0.2.1": "censys", "192.0.2.2": "censys"}


def test_duplicate_source_names_rejected(tmp_path: Path) -> None:
    source = write(tmp_path / "a.txt", "192.0.2.1\n")
    with pytest.raises(ConfigError, match="unique"):
        LabelBook([LabelSource("a", source), LabelSource("a", source)])
    with pytest.raises(ConfigError, match="reserved"):
        LabelBook([LabelSource(MIRAI_SOURCE_NAME, source)])


def test_from_paths_names_sources(tmp_path: Path) -> None:
    first = write(tmp_path / "censys_v4.txt", "192.0.2.0/24\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    second = write(sub / "censys_v4.txt", "198.51.100.0/24\n")
    book = LabelBook.from_paths([first, second])
    assert set(book.versions()) == {"censys_v4", "censys_v4_1"}


def test_versions_are_content_sha256(tmp_path: Path) -> None:
    source = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    book = LabelBook([LabelSource("censys", source)])
    assert book.versions() == {"censys": hashlib.sha256(source.read_bytes()).hexdigest()}


def _bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_reload_picks_up_changes(tmp_path: Path) -> None:
    changing = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    steady = write(tmp_path / "shodan.txt", "198.51.100.0/24\n")
    book = LabelBook([LabelSource("censys", changing), LabelSource("shodan", steady)])
    assert book.reload_if_changed() == []
    write(changing, "203.0.113.0/24\n")
    _bump_mtime(changing)
    assert book.reload_if_changed() == ["censys"]
    assert book.label_of("203.0.113.5") == "censys"
    assert book.label_of("192.0.2.5") is None
    assert book.label_of("198.51.100.5") == "shodan"


def test_reload_touch_without_change_keeps_version(tmp_path: Path) -> None:
    source = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    book = LabelBook([LabelSource("censys", source)])
    before = book.versions()
    _bump_mtime(source)
    assert book.reload_if_changed() == []
    assert book.versions() == before


def test_broken_reload_keeps_previous_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write(tmp_path / "list.json", '{"name": "Censys", "type": "cidr", "list": ["192.0.2.0/24"]}')
    book = LabelBook([LabelSource("censys", source)])
    before = book.versions()
    write(source, '{"name": "Censys", "list": [')
    _bump_mtime(source)
    with caplog.at_level(logging.ERROR):
        assert book.reload_if_changed() == []
        assert book.reload_if_changed() == []
    assert book.label_of("192.0.2.7") == "censys"
    assert book.versions() == before
    assert book.reload_failures() == {"censys": 1}
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once per broken file state, not at every check
    assert "keeping the previous version" in errors[0].getMessage()
    write(source, '{"name": "Censys", "type": "cidr", "list": ["203.0.113.0/24"]}')
    _bump_mtime(source)
    assert book.reload_if_changed() == ["censys"]
    assert book.label_of("203.0.113.1") == "censys"


def test_deleted_source_keeps_previous_version(tmp_path: Path) -> None:
    source = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    book = LabelBook([LabelSource("censys", source)])
    source.unlink()
    assert book.reload_if_changed() == []
    assert book.label_of("192.0.2.1") == "censys"


def test_mirai_priority_and_tokens(tmp_path: Path) -> None:
    listed = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    mirai = MiraiSource()
    mirai.observe(mirai_window(0, {"192.0.2.9": 3, "src_ipaddr7": 1, "198.51.100.1": 0}))
    book = LabelBook([LabelSource("censys", listed)], mirai=mirai)
    assert book.label_of("192.0.2.9") == "mirai"
    assert book.match("192.0.2.9").source == MIRAI_SOURCE_NAME  # type: ignore[union-attr]
    assert book.label_of("192.0.2.8") == "censys"
    assert book.label_of("src_ipaddr7") == "mirai"
    assert book.label_of("198.51.100.1") is None
    trusted = LabelBook([LabelSource("censys", listed, priority=20)], mirai=mirai)
    assert trusted.label_of("192.0.2.9") == "censys"
    tied = LabelBook([LabelSource("censys", listed, priority=10)], mirai=mirai, mirai_priority=10)
    assert tied.label_of("192.0.2.9") == "censys"
    assert "mirai" in book.labels()


def test_save_load_restores_mirai_and_reports_changes(tmp_path: Path) -> None:
    listed = write(tmp_path / "censys.txt", "192.0.2.0/24\n")
    mirai = MiraiSource()
    mirai.observe(mirai_window(0, {"203.0.113.4": 1}))
    book = LabelBook([LabelSource("censys", listed)], mirai=mirai)
    book.save(tmp_path / "state")
    fresh = LabelBook([LabelSource("censys", listed)], mirai=MiraiSource())
    assert fresh.load(tmp_path / "state") == {}
    assert fresh.label_of("203.0.113.4") == "mirai"
    write(listed, "198.51.100.0/24\n")
    changed = LabelBook([LabelSource("censys", listed)], mirai=MiraiSource())
    differences = changed.load(tmp_path / "state")
    assert list(differences) == ["censys"]
    with pytest.raises(StateError):
        changed.load(tmp_path / "missing")


prefixes = st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32), st.sampled_from(["a", "b", "c"]))


@settings(max_examples=40, deadline=None)
@given(entries=st.lists(prefixes, min_size=1, max_size=12), probes=st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_lookup_matches_brute_force(tmp_path_factory: pytest.TempPathFactory, entries: list, probes: list) -> None:
    folder = tmp_path_factory.mktemp("prop")
    lines = ["ip,label"]
    networks = []
    for value, length, label in entries:
        network = ipaddress.ip_network((value, length), strict=False)
        lines.append(f"{network},{label}")
        networks.append((network, label))
    source = write(folder / "gt.csv", "\n".join(lines) + "\n")
    book = LabelBook([LabelSource("gt", source)])
    # Probe the listed networks' own addresses as well as random ones.
    addresses = [ipaddress.IPv4Address(value) for value in probes] + [network.network_address for network, _ in networks]
    for address in addresses:
        covering = [(network.prefixlen, -order, label) for order, (network, label) in enumerate(networks) if address in network]
        expected = max(covering)[2] if covering else None
        assert book.label_of(str(address)) == expected
