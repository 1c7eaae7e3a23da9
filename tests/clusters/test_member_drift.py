"""Per-sender port sets and the subgroup port-set change rule, on seeded hand-made windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.clusters.drift import PORT_SET_CHANGED
from darkvec_stream.clusters.member_drift import MemberPortDrift
from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

NS_PER_HOUR = 3_600_000_000_000
# A small organisation in one /24 that scans every 8 windows, inside a big cluster.
ORG = tuple(f"198.18.7.{i}" for i in range(1, 7))
ORG_BEFORE = (80, 443, 8080, 8443)
ORG_AFTER = (3389, 5900, 5901, 5985)
CROWD = tuple(f"100.64.{i // 100}.{i % 100}" for i in range(120))
CHANGE_WINDOW = 40
ORG_PERIOD = 8


def activity(ports: tuple[int, ...], packets: int, rng: np.random.Generator) -> SenderActivity:
    counts: dict[int, int] = {}
    for port in rng.choice(np.asarray(ports), size=packets).tolist():
        counts[int(port)] = counts.get(int(port), 0) + 1
    return SenderActivity(packets=packets, first_ns=0, last_ns=0, dst_ports=counts,
                          services={f"tcp/{port}" for port in counts})


def window_of(index: int, active: dict[str, SenderActivity]) -> ClosedWindow:
    return ClosedWindow(index, index * NS_PER_HOUR, (index + 1) * NS_PER_HOUR, (), active, 0, len(active), 0)


def org_stream(windows: int, change_window: int | None, seed: int = 0,
               org_windows: tuple[int, ...] | None = None) -> list[ClosedWindow]:
    """The crowd on telnet every window, the organisation in its campaign windows."""
    rng = np.random.default_rng(seed)
    stream = []
    campaigns = set(org_windows) if org_windows is not None else set(range(3, windows, ORG_PERIOD))
    for index in range(windows):
        active = {sender: activity((23, 2323), int(rng.integers(2, 8)), rng)
                  for sender in CROWD if rng.random() < 0.7}
        if index in campaigns:
            changed = change_window is not None and index >= change_window
            for sender in ORG:
                active[sender] = activity(ORG_AFTER if changed else ORG_BEFORE, 16, rng)
        stream.append(window_of(index, active))
    return stream


def run(drift: MemberPortDrift, stream: list[ClosedWindow], labels: dict[str, str] | None = None,
        cluster: frozenset[str] = frozenset(CROWD + ORG)) -> list[tuple[int, dict]]:
    fired = []
    for window in stream:
        for finding in drift.update(window, sorted(cluster), {"C1": cluster}, labels or {}):
            assert finding.rule == PORT_SET_CHANGED
            fired.append((window.index, dict(finding.evidence)))
    return fired


def first_campaign_after(change_window: int) -> int:
    return next(index for index in range(3, 200, ORG_PERIOD) if index >= change_window)


def test_small_group_change_fires_in_first_campaign_window():
    fired = run(MemberPortDrift(), org_stream(64, CHANGE_WINDOW))
    assert [index for index, _ in fired] == [first_campaign_after(CHANGE_WINDOW)]
    evidence = fired[0][1]
    assert evidence["subgroup"] == "/24 198.18.7.0/24"
    assert evidence["moved_senders"] == 6
    assert evidence["moved_sample"] == sorted(ORG)
    assert sorted(evidence["ports_before"]) == sorted(ORG_BEFORE)
    assert sorted(evidence["ports_after"]) == sorted(ORG_AFTER)
    assert evidence["jaccard_vs_history"] == 0.0


def test_stable_stream_never_fires():
    assert run(MemberPortDrift(), org_stream(96, None, seed=1)) == []


def test_label_subgroup_spread_over_subnets():
    # The same organisation spread over many /24s: only its label ties it together.
    spread = {sender: f"203.0.{i}.9" for i, sender in enumerate(ORG)}
    stream = [window_of(w.index, {spread.get(s, s): a for s, a in w.activity.items()})
              for w in org_stream(64, CHANGE_WINDOW, seed=2)]
    cluster = frozenset(CROWD) | frozenset(spread.values())
    fired = run(MemberPortDrift(), stream, {sender: "onyphe" for sender in spread.values()}, cluster)
    assert [index for index, _ in fired] == [first_campaign_after(CHANGE_WINDOW)]
    assert fired[0][1]["subgroup"] == "label onyphe"


def test_campaign_split_over_two_windows_fires_once():
    stream = org_stream(64, CHANGE_WINDOW, seed=3)
    change = first_campaign_after(CHANGE_WINDOW)
    # Half of the organisation sends in the change window, the other half in the next one.
    first = {s: a for s, a in stream[change].activity.items() if s not in ORG[3:]}
    second = dict(stream[change + 1].activity)
    for sender in ORG[3:]:
        second[sender] = stream[change].activity[sender]
    stream[change] = window_of(change, first)
    stream[change + 1] = window_of(change + 1, second)
    fired = run(MemberPortDrift(), stream)
    assert [index for index, _ in fired] == [change + 1]
    assert fired[0][1]["moved_senders"] == 6


def test_newcomers_on_new_ports_are_not_a_change():
    # Another organisation joins the cluster on ports the cluster never saw: no sender moved.
    stream = org_stream(64, None, seed=4)
    joiners = tuple(f"198.18.9.{i}" for i in range(1, 11))
    rng = np.random.default_rng(5)
    for index in range(CHANGE_WINDOW, 64):
        active = dict(stream[index].activity)
        active.update({sender: activity((6379, 9200), 12, rng) for sender in joiners})
        stream[index] = window_of(index, active)
    assert run(MemberPortDrift(), stream, cluster=frozenset(CROWD + ORG + joiners)) == []


def test_port_rotators_never_count():
    # Senders of one /24 that hit fresh random ports every window have no port set to leave.
    rng = np.random.default_rng(6)
    rotators = tuple(f"198.18.11.{i}" for i in range(1, 21))
    stream = []
    for index in range(48):
        stream.append(window_of(index, {
            sender: activity(tuple(int(p) for p in rng.integers(1, 65536, size=2)), 6, rng) for sender in rotators}))
    assert run(MemberPortDrift(), stream, cluster=frozenset(rotators)) == []


def test_whole_cluster_move_named_once():
    # Every member moves: the cluster, its /24 and its label all qualify; one finding names the cluster.
    stream = org_stream(64, CHANGE_WINDOW, seed=7)
    fired = run(MemberPortDrift(), stream, {sender: "onyphe" for sender in ORG}, cluster=frozenset(ORG))
    assert [index for index, _ in fired] == [first_campaign_after(CHANGE_WINDOW)]
    assert fired[0][1]["subgroup"] == "the whole cluster"


def test_too_few_movers_do_not_fire():
    assert run(MemberPortDrift(min_senders=7), org_stream(64, CHANGE_WINDOW, seed=8)) == []


def test_save_and_load_mid_stream_gives_same_findings(tmp_path):
    stream = org_stream(64, CHANGE_WINDOW, seed=9)
    expected = run(MemberPortDrift(), stream)
    drift = MemberPortDrift()
    run(drift, stream[:CHANGE_WINDOW])
    drift.save(tmp_path)
    restored = MemberPortDrift()
    restored.load(tmp_path)
    assert len(restored) == len(drift)
    assert run(restored, stream[CHANGE_WINDOW:]) == expected


def test_forget_and_cap_bound_the_state():
    drift = MemberPortDrift(max_senders=50)
    run(drift, org_stream(4, None, seed=10))
    assert len(drift) == 50
    drift = MemberPortDrift()
    run(drift, org_stream(4, None, seed=10))
    drift.forget(CROWD)
    assert len(drift) == len(ORG)
    assert drift.port_set(ORG[0], 4) <= set(ORG_BEFORE)
    assert drift.port_set(CROWD[0], 4) == set()


def test_senders_silent_past_history_are_dropped():
    drift = MemberPortDrift(history_windows=10)
    stream = org_stream(30, None, seed=11)
    for window in stream:
        drift.update(window, sorted(ORG) if window.index == 0 else sorted(CROWD), {"C1": frozenset(CROWD)}, {})
    assert drift.absent_windows(ORG[0], 30) is None
    assert drift.absent_windows(CROWD[0], 30) == 0


def test_joined_ports_counts_new_senders_only():
    drift = MemberPortDrift()
    stream = org_stream(30, None, seed=12)
    # The organisation is live in another cluster for a day, then clustering moves it into C1.
    for window in stream[:28]:
        drift.update(window, sorted(CROWD + ORG), {"C1": frozenset(CROWD), "C2": frozenset(ORG)}, {})
    rng = np.random.default_rng(13)
    joiners = tuple(f"198.18.9.{i}" for i in range(1, 11))
    active = dict(stream[28].activity)
    active.update({sender: activity((2375, 2376), 8, rng) for sender in joiners})
    joined = drift.joined_ports(frozenset(CROWD + ORG + joiners), "C1", window_of(28, active),
                                within_windows=3, newcomer_windows=24)
    assert joined.joined == len(joiners)
    assert joined.port == 2375
    assert joined.port_share == 1.0


def test_shared_port_of_senders_without_ports_is_none():
    shared = MemberPortDrift().shared_port(["198.18.9.1"], window_of(0, {}))
    assert (shared.joined, shared.port, shared.port_share) == (1, None, 0.0)


def test_co_active_share_separates_campaigns_from_noise():
    drift = MemberPortDrift()
    rng = np.random.default_rng(14)
    noise = tuple(f"100.65.{i}.1" for i in range(12))
    stream = org_stream(24, None, seed=14)
    for window in stream:
        # Each noise sender sends in one window of its own; the organisation every 8 windows.
        active = dict(window.activity)
        active.update({noise[window.index % 12]: activity((5060,), 3, rng)})
        window = window_of(window.index, active)
        drift.update(window, sorted(CROWD + ORG + noise), {"C1": frozenset(CROWD + ORG + noise)}, {})
    now = window_of(24, {})
    assert drift.co_active_share(ORG, now) == 1.0
    assert drift.co_active_share(noise, now) == pytest.approx(2 / 12)
    assert drift.co_active_share([], now) == 0.0


def test_bad_settings_and_state_rejected(tmp_path):
    with pytest.raises(ConfigError, match="min_moved_share"):
        MemberPortDrift(min_moved_share=1.5)
    with pytest.raises(ConfigError, match="history_windows"):
        MemberPortDrift(history_windows=0)
    (tmp_path / "member_drift.json").write_text('{"version": 1, "senders": {"a": [1]}}', encoding="utf-8")
    with pytest.raises(StateError, match="member port state"):
        MemberPortDrift().load(tmp_path)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), change=st.integers(20, 50))
def test_change_fires_exactly_once_at_first_campaign(seed, change):
    fired = run(MemberPortDrift(), org_stream(72, change, seed=seed))
    assert [index for index, _ in fired] == [first_campaign_after(change)]
