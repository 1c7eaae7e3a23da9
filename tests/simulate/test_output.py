"""Determinism, counts, truth consistency and event timing of simulated runs."""

from __future__ import annotations

import hashlib
import ipaddress
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from darkvec_stream.simulate import (
    CampaignGroup,
    ContinuousGroup,
    Simulation,
    SimulationConfig,
    SimulationResult,
    load_truth,
    write_simulation,
)
from darkvec_stream.simulate.config import resolve
from darkvec_stream.simulate.populations import scaled_count

from .conftest import SMALL, read_rows

TINY = SimulationConfig(days=0.25, scale=0.01, seed=11)


def _digests(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())}


@pytest.mark.parametrize("format_name", ["record-csv", "pcap", "zeek-conn"])
def test_same_seed_identical_files(tmp_path: Path, format_name: str) -> None:
    first = write_simulation(TINY, tmp_path / "a", format_name, compress=True)
    second = write_simulation(TINY, tmp_path / "b", format_name, compress=True)
    assert first.records > 1000
    assert _digests(first.directory) == _digests(second.directory)


def test_different_seed_different_files(tmp_path: Path) -> None:
    first = write_simulation(TINY, tmp_path / "a")
    second = write_simulation(replace(TINY, seed=12), tmp_path / "b")
    first_files, second_files = _digests(first.directory), _digests(second.directory)
    for name in ("traffic-20210301.csv", "senders.csv", "labels.csv"):
        assert first_files[name] != second_files[name], name


def test_population_change_keeps_others(tmp_path: Path) -> None:
    """Resizing one population leaves every other population's traffic unchanged."""
    bigger = tuple(
        replace(population, senders=population.senders * 2)
        if population.name == "smtp-botnet" else population
        for population in TINY.populations
    )
    base = Simulation(TINY)
    changed = Simulation(replace(TINY, populations=bigger))
    base_batches, changed_batches = list(base.batches()), list(changed.batches())
    smtp = [model.name for model in base.models].index("smtp-botnet")
    for before, after in zip(base_batches, changed_batches):
        keep_before = before.population != smtp
        keep_after = after.population != smtp
        assert np.array_equal(np.sort(before.ts_ns[keep_before]), np.sort(after.ts_ns[keep_after]))
    assert sum(len(batch) for batch in changed_batches) > sum(len(batch) for batch in base_batches)


def test_campaign_rosters_match_config(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    per_group = Counter(row.group for row in truth.senders.values())
    for population in SMALL.populations:
        if isinstance(population, CampaignGroup):
            expected = sum(scaled_count(sub.senders, SMALL.scale, SMALL.min_group_senders)
                           for sub in population.subgroups)
            assert per_group[population.name] == expected, population.name


def test_botnet_alive_count_matches_config(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    mirai = next(p for p in SMALL.populations if p.name == "mirai")
    assert isinstance(mirai, ContinuousGroup)
    start_ns = truth.summary["start_ns"]
    # Every initial bot sends from the start; bots born later start later.
    first_hour = [row for row in truth.senders.values()
                  if row.group == "mirai" and row.first_seen_ns < start_ns + 3600 * 10**9]
    initial = scaled_count(mirai.senders, SMALL.scale, SMALL.min_group_senders)
    assert 0.9 * initial <= len(first_hour) <= initial


def test_truth_matches_records(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    rows = read_rows(small_run.traffic_files)
    packets: Counter[str] = Counter()
    first: dict[str, int] = {}
    last: dict[str, int] = defaultdict(int)
    for row in rows:
        ts_ns, src = int(row[0]), row[1]
        packets[src] += 1
        first[src] = min(first.get(src, ts_ns), ts_ns)
        last[src] = max(last[src], ts_ns)
    assert len(rows) == small_run.records == truth.summary["records"]
    assert set(packets) == set(truth.senders)
    for ip, row in truth.senders.items():
        assert row.packets == packets[ip], ip
        assert row.first_seen_ns == first[ip], ip
        assert row.last_seen_ns == last[ip], ip


def test_senders_outside_telescope(small_run: SimulationResult) -> None:
    telescope = ipaddress.IPv4Network(SMALL.prefix)
    rows = read_rows(small_run.traffic_files)
    sources = {row[1] for row in rows}
    destinations = {row[2] for row in rows}
    assert not [ip for ip in sources if ipaddress.IPv4Address(ip) in telescope]
    assert all(ipaddress.IPv4Address(ip) in telescope for ip in destinations)


def test_mirai_fingerprint_exact(small_run: SimulationResult) -> None:
    """Only Mirai-like senders' SYNs carry the fingerprint; a random sequence
    number would match its destination with chance 2**-32, and the generator
    removes those matches."""
    truth = load_truth(small_run.directory)
    fingerprinted: Counter[str] = Counter()
    tcp_by_group: Counter[str] = Counter()
    for row in read_rows(small_run.traffic_files):
        if row[5] != "6":
            continue
        group = truth.senders[row[1]].group
        tcp_by_group[group] += 1
        if int(row[9]) == int(ipaddress.IPv4Address(row[2])):
            fingerprinted[group] += 1
            assert row[7] == "2", row
    assert fingerprinted["mirai"] == tcp_by_group["mirai"] > 0
    assert set(fingerprinted) == {"mirai"}


def test_worm_silent_before_onset(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    onset = next(event for event in truth.events if event["type"] == "onset")
    worm_rows = [row for row in read_rows(small_run.traffic_files)
                 if truth.senders[row[1]].group == onset["group"]]
    assert worm_rows
    assert min(int(row[0]) for row in worm_rows) >= onset["time_ns"]
    worm_ports = {int(port.split("/")[0]) for port in onset["ports"]}
    assert {int(row[4]) for row in worm_rows} <= worm_ports


def test_worm_grows_after_onset(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    onset = next(event for event in truth.events if event["type"] == "onset")
    hour_ns = 3600 * 10**9
    senders_by_hour: defaultdict[int, set[str]] = defaultdict(set)
    for row in read_rows(small_run.traffic_files):
        if truth.senders[row[1]].group == onset["group"]:
            senders_by_hour[(int(row[0]) - onset["time_ns"]) // hour_ns].add(row[1])
    assert len(senders_by_hour[0]) >= 1
    assert len(senders_by_hour[max(senders_by_hour)]) > len(senders_by_hour[0])


def test_port_change_at_event_time(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    change = next(event for event in truth.events if event["type"] == "port_change")
    before_ports = {int(port.split("/")[0]) for port in change["ports_before"]}
    after_ports = {int(port.split("/")[0]) for port in change["ports_after"]}
    before: set[int] = set()
    after: set[int] = set()
    for row in read_rows(small_run.traffic_files):
        if truth.senders[row[1]].subgroup != change["subgroup"]:
            continue
        # A campaign that started before the change keeps its old ports until it ends.
        (before if int(row[0]) < change["time_ns"] else after).add(int(row[4]))
    assert before == before_ports
    assert after_ports <= after
    campaign_ns = 2 * 3600 * 10**9
    late = {int(row[4]) for row in read_rows(small_run.traffic_files)
            if truth.senders[row[1]].subgroup == change["subgroup"]
            and int(row[0]) >= change["time_ns"] + campaign_ns}
    assert late == after_ports


def test_events_follow_config(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    resolved = resolve(SMALL)
    worm = next(p for p in resolved.populations if isinstance(p, ContinuousGroup) and p.kind == "worm")
    onset = next(event for event in truth.events if event["type"] == "onset")
    assert onset["time_ns"] == truth.summary["start_ns"] + round(worm.onset_day * 86_400) * 10**9
    assert onset["group"] == worm.name


def test_disorder_shares(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    timestamps = np.asarray([int(row[0]) for row in read_rows(small_run.traffic_files)], dtype=np.int64)
    running_max = np.maximum.accumulate(timestamps)
    late_ns = running_max - timestamps
    assert late_ns.max() <= SMALL.max_displacement_s * 10**9
    out_of_order = int((late_ns > 0).sum())
    records = truth.summary["records"]
    assert 0.3 * SMALL.out_of_order_share * records < out_of_order <= truth.summary["displaced"]
    duplicates = truth.summary["duplicates"]
    assert abs(duplicates - SMALL.duplicate_share * records) < 5 * np.sqrt(SMALL.duplicate_share * records)


def test_labels_partial_scanner_share(small_run: SimulationResult) -> None:
    truth = load_truth(small_run.directory)
    assert truth.labels
    for ip, label in truth.labels.items():
        assert truth.senders[ip].kind == "scanner"
        assert truth.senders[ip].group == label
    for group in {row.group for row in truth.senders.values() if row.kind == "scanner"}:
        members = sum(1 for row in truth.senders.values() if row.group == group)
        labelled = sum(1 for label in truth.labels.values() if label == group)
        assert labelled == max(1, round(members * SMALL.label_share)), group
    assert not [ip for ip in truth.labels if truth.senders[ip].kind == "botnet"]


@pytest.mark.parametrize("prefix", ["198.51.100.0/22", "198.51.96.0/20"])
def test_larger_telescope_scales_packets(prefix: str) -> None:
    base = Simulation(TINY)
    wide = Simulation(replace(TINY, prefix=prefix))
    base_records = sum(len(batch) for batch in base.batches())
    wide_records = sum(len(batch) for batch in wide.batches())
    factor = wide.config.size_factor
    assert 0.6 * factor < wide_records / base_records < 1.4 * factor
    telescope = ipaddress.IPv4Network(prefix)
    batch = next(wide.batches())
    assert len(batch)
    low, high = int(telescope.network_address), int(telescope.broadcast_address)
    assert batch.dst.min() >= low and batch.dst.max() <= high
