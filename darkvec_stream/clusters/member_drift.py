"""Follow each clustered sender's own port set and find groups of senders that change it together.

A scanner organisation of six senders can sit inside a cluster of hundreds,
so its port change barely moves the cluster's port mix. This module keeps
the ports each sender used in recent windows. It reports a port-set change
when, in one window, enough senders of one subgroup of a tracked cluster
(the whole cluster, one /24, or one confident label) move most of their
packets to ports they never used. It also answers two questions
the alert rules ask about senders: how long they were out of the live set,
and which ports the senders that just joined a cluster share. It does not
cluster, track ids or build alerts; state is saved as JSON.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

from darkvec_stream.clusters.drift import PORT_SET_CHANGED, DriftFinding, jaccard
from darkvec_stream.clusters.profile import NOT_AN_ADDRESS, UNKNOWN_LABEL, subnet_of
from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

logger = logging.getLogger(__name__)

STATE_FILE = "member_drift.json"
STATE_VERSION = 1

WHOLE_CLUSTER = "cluster"
SUBNET = "subnet_24"
LABEL = "label"
# When two subgroups report the same moved senders, the broader one names the change.
_KIND_RANK = {WHOLE_CLUSTER: 0, SUBNET: 1, LABEL: 2}


@dataclass(slots=True)
class _Sender:
    last_live: int
    first_live: int
    last_active: int | None = None
    cluster_id: str | None = None
    cluster_since: int = 0
    stable_windows: int = 0
    ports: dict[int, int] = field(default_factory=dict)
    pending: dict[int, int] = field(default_factory=dict)
    pending_window: int | None = None


@dataclass(frozen=True, slots=True)
class JoinedPorts:
    """A set of senders (those that joined one cluster recently, or all members) and the port most share.

    ``port_share`` is the share of ``joined`` senders whose port set (or
    traffic this window) contains ``port``; 0.0 when none has a port.
    """

    joined: int
    port: int | None
    port_share: float


class MemberPortDrift:
    """Per-sender port sets and the subgroup port-set change rule.

    A sender's port set is the ports that carried at least ``port_min_share``
    of its packets in a window within the last ``history_windows`` windows.
    A sender counts once it kept that set for ``stable_windows`` active
    windows in a row; senders that rotate ports never do. It moved in a
    window when at least ``moved_packet_share`` of its packets went to ports
    outside its set. A subgroup changed its port set when three things hold.
    At least ``min_senders`` of its counted members moved (in this window or
    in the last ``confirm_windows``). They are at least ``min_moved_share``
    of the counted members active in the window or moved. The Jaccard index
    between their new and old ports is below ``jaccard_threshold``. A
    sender's move stays out of its history for ``confirm_windows`` windows
    so that a campaign split over two windows is still seen as one move;
    then it is learned, so one change fires once. At most ``max_senders``
    senders are kept (the least recently live are dropped first).

    >>> drift = MemberPortDrift()
    >>> drift.min_senders, drift.history_windows
    (5, 168)
    """

    def __init__(
        self,
        min_senders: int = 5,
        min_moved_share: float = 0.8,
        moved_packet_share: float = 0.5,
        jaccard_threshold: float = 0.5,
        port_min_share: float = 0.05,
        stable_windows: int = 2,
        confirm_windows: int = 2,
        history_windows: int = 168,
        max_ports_per_sender: int = 32,
        max_senders: int = 200_000,
        enabled: bool = True,
    ) -> None:
        for name, share in (("min_moved_share", min_moved_share), ("moved_packet_share", moved_packet_share),
                            ("jaccard_threshold", jaccard_threshold), ("port_min_share", port_min_share)):
            if not 0.0 <= share <= 1.0:
                raise ConfigError(f"member port drift {name} must be in [0, 1], got {share}")
        counts = {"min_senders": min_senders, "stable_windows": stable_windows, "confirm_windows": confirm_windows,
                  "history_windows": history_windows, "max_ports_per_sender": max_ports_per_sender,
                  "max_senders": max_senders}
        for name, value in counts.items():
            if value < 1:
                raise ConfigError(f"member port drift {name} must be at least 1, got {value}")
        self.min_senders = min_senders
        self.min_moved_share = min_moved_share
        self.moved_packet_share = moved_packet_share
        self.jaccard_threshold = jaccard_threshold
        self.port_min_share = port_min_share
        self.stable_windows = stable_windows
        self.confirm_windows = confirm_windows
        self.history_windows = history_windows
        self.max_ports_per_sender = max_ports_per_sender
        self.max_senders = max_senders
        self.enabled = enabled
        self._senders: dict[str, _Sender] = {}

    def __len__(self) -> int:
        return len(self._senders)

    def port_set(self, sender: str, window_index: int) -> set[int]:
        """Return the ports ``sender`` used within ``history_windows`` before ``window_index``."""
        state = self._senders.get(sender)
        return set() if state is None else self._port_set(state, window_index)

    def absent_windows(self, sender: str, window_index: int) -> int | None:
        """Return the windows since ``sender`` was last among the live senders, before this run's update.

        None means the sender was never seen (or was forgotten).
        """
        state = self._senders.get(sender)
        return None if state is None else window_index - state.last_live - 1

    def joined_ports(self, members: Iterable[str], cluster_id: str, window: ClosedWindow,
                     within_windows: int, newcomer_windows: int) -> JoinedPorts:
        """Describe the members that were not in ``cluster_id`` ``within_windows`` windows ago and are new.

        New means first live within ``newcomer_windows`` windows (or this
        run): senders that clustering moved over from another cluster are
        a reshuffle, not growth. Call before ``update`` for the same window,
        because ``update`` moves the senders into their new clusters.
        """
        joined = []
        for sender in members:
            state = self._senders.get(sender)
            if state is None:
                joined.append(sender)
            elif (window.index - state.first_live < newcomer_windows
                  and not self._member_since(sender, cluster_id, window.index, within_windows)):
                joined.append(sender)
        return self.shared_port(joined, window)

    def shared_port(self, senders: Collection[str], window: ClosedWindow) -> JoinedPorts:
        """Return the port most of ``senders`` are known for (port set or this window) and their share."""
        ports: Counter[int] = Counter()
        for sender in senders:
            known = self.port_set(sender, window.index)
            activity = window.activity.get(sender)
            if activity is not None:
                known |= _window_port_set(activity, self.port_min_share)
            ports.update(known)
        if not senders or not ports:
            return JoinedPorts(len(senders), None, 0.0)
        port, count = min(ports.items(), key=lambda item: (-item[1], item[0]))
        return JoinedPorts(len(senders), port, count / len(senders))

    def co_active_share(self, senders: Collection[str], window: ClosedWindow, span_windows: int = 2) -> float:
        """Return the largest share of ``senders`` whose last traffic fell in one span of ``span_windows`` windows.

        Members of a botnet or a scanning campaign send in the same windows;
        lone scanners and noise that cluster together send at random times.
        Call before ``update`` for the same window.
        """
        last: Counter[int] = Counter()
        for sender in senders:
            state = self._senders.get(sender)
            if sender in window.activity:
                last[window.index] += 1
            elif state is not None and state.last_active is not None:
                last[state.last_active] += 1
        if not senders or not last:
            return 0.0
        best = max(sum(last[start + offset] for offset in range(span_windows)) for start in last)
        return best / len(senders)

    def _member_since(self, sender: str, cluster_id: str, window_index: int, within_windows: int) -> bool:
        state = self._senders.get(sender)
        return (state is not None and state.cluster_id == cluster_id
                and window_index - state.cluster_since >= within_windows)

    def update(
        self,
        window: ClosedWindow,
        live: Sequence[str],
        members: Mapping[str, frozenset[str]],
        known_labels: Mapping[str, str],
    ) -> list[DriftFinding]:
        """Judge this window's subgroups, then learn the window; return one finding per change.

        ``live`` contains every sender passed to clustering (noise included),
        ``members`` maps tracked cluster ids to their members, and
        ``known_labels`` the confident labels that form label subgroups.
        """
        moved = self._moves(window, members)
        changes = self._findings(window, members, known_labels, moved) if self.enabled else []
        confirmed = {sender for _, group_moved in changes for sender in group_moved}
        self._learn(window, live, members, moved, confirmed)
        return [finding for finding, _ in changes]

    def _moves(self, window: ClosedWindow, members: Mapping[str, frozenset[str]]) -> dict[str, dict[int, int]]:
        """Map each counted member that moved (now or within ``confirm_windows``) to its new-port packets."""
        moved: dict[str, dict[int, int]] = {}
        for sender in sorted(set().union(*members.values()) if members else ()):
            state = self._senders.get(sender)
            if state is None or state.stable_windows < self.stable_windows:
                continue
            history = self.port_set(sender, window.index)
            activity = window.activity.get(sender)
            new_ports = dict(state.pending) if self._pending_live(state, window.index) else {}
            if activity is not None and history and _outside_share(activity, history) >= self.moved_packet_share:
                for port, packets in activity.dst_ports.items():
                    if int(port) not in history:
                        new_ports[int(port)] = new_ports.get(int(port), 0) + packets
            if new_ports:
                moved[sender] = new_ports
        return moved

    def _pending_live(self, state: _Sender, window_index: int) -> bool:
        return state.pending_window is not None and window_index - state.pending_window <= self.confirm_windows

    def _counted(self, sender: str, window: ClosedWindow, moved: Mapping[str, dict[int, int]]) -> bool:
        if sender in moved:
            return True
        state = self._senders.get(sender)
        return (state is not None and state.stable_windows >= self.stable_windows and sender in window.activity
                and bool(self.port_set(sender, window.index)))

    def _findings(self, window: ClosedWindow, members: Mapping[str, frozenset[str]],
                  known_labels: Mapping[str, str],
                  moved: Mapping[str, dict[int, int]]) -> list[tuple[DriftFinding, list[str]]]:
        findings: list[tuple[DriftFinding, list[str]]] = []
        for cluster_id in sorted(members):
            candidates = []
            for (kind, name), group in sorted(_subgroups(cluster_id, members[cluster_id], known_labels).items()):
                counted = [sender for sender in group if self._counted(sender, window, moved)]
                group_moved = [sender for sender in counted if sender in moved]
                if len(group_moved) < self.min_senders or len(group_moved) < self.min_moved_share * len(counted):
                    continue
                candidates.append((kind, name, group_moved, len(counted), len(group)))
            kept: list[set[str]] = []
            for kind, name, group_moved, counted, size in sorted(
                    candidates, key=lambda item: (-len(item[2]), _KIND_RANK[item[0]], item[1])):
                moved_set = set(group_moved)
                if any(len(moved_set & other) >= 0.5 * len(moved_set) for other in kept):
                    continue
                finding = self._finding(cluster_id, window.index, kind, name, group_moved, counted, size, moved)
                if finding is not None:
                    kept.append(moved_set)
                    findings.append((finding, group_moved))
        return findings

    def _finding(self, cluster_id: str, window_index: int, kind: str, name: str, group_moved: list[str],
                 counted: int, size: int, moved: Mapping[str, dict[int, int]]) -> DriftFinding | None:
        new_packets: Counter[int] = Counter()
        old_senders: Counter[int] = Counter()
        for sender in group_moved:
            new_packets.update(moved[sender])
            old_senders.update(self.port_set(sender, window_index))
        total = sum(new_packets.values())
        new_set = {port for port, packets in new_packets.items() if packets >= self.port_min_share * total}
        old_set = set(old_senders)
        value = jaccard(new_set, old_set)
        if value >= self.jaccard_threshold:
            return None
        subgroup = {WHOLE_CLUSTER: "the whole cluster", SUBNET: f"/24 {name}", LABEL: f"label {name}"}[kind]
        return DriftFinding(cluster_id, window_index, PORT_SET_CHANGED, {
            "rule": PORT_SET_CHANGED,
            "subgroup": subgroup,
            "subgroup_kind": kind,
            "subgroup_size": size,
            "moved_senders": len(group_moved),
            "senders_with_port_set": counted,
            "moved_share": round(len(group_moved) / counted, 6) if counted else 0.0,
            "min_moved_share": self.min_moved_share,
            "min_senders": self.min_senders,
            "jaccard_vs_history": round(value, 6),
            "threshold": self.jaccard_threshold,
            "ports_before": _top_ports(old_senders),
            "ports_after": _top_ports(new_packets),
            "ports_added": sorted(new_set - old_set),
            "ports_removed": sorted(old_set - new_set),
            "moved_sample": sorted(group_moved)[:10],
        })

    def _learn(self, window: ClosedWindow, live: Sequence[str], members: Mapping[str, frozenset[str]],
               moved: Mapping[str, dict[int, int]], confirmed: set[str]) -> None:
        cluster_of = {sender: cluster_id for cluster_id, group in members.items() for sender in group}
        for sender in live:
            state = self._senders.get(sender)
            if state is None:
                state = self._senders[sender] = _Sender(last_live=window.index, first_live=window.index)
            state.last_live = window.index
            cluster_id = cluster_of.get(sender)
            if cluster_id != state.cluster_id:
                state.cluster_id, state.cluster_since = cluster_id, window.index
            activity = window.activity.get(sender)
            if activity is not None:
                state.last_active = window.index
            if sender in moved and sender not in confirmed:
                self._hold(state, window, activity)
            elif activity is not None:
                self._learn_sender(state, window.index, activity, sender in confirmed)
        self._expire(window.index)

    def _hold(self, state: _Sender, window: ClosedWindow, activity: SenderActivity | None) -> None:
        # A move not yet shared by its group waits; past confirm_windows it is
        # the sender's own business and becomes its history.
        if state.pending_window is None or not self._pending_live(state, window.index):
            self._flush_pending(state)
            state.pending_window = window.index
        if activity is not None:
            for port, packets in activity.dst_ports.items():
                if packets >= self.port_min_share * activity.packets:
                    state.pending[int(port)] = state.pending.get(int(port), 0) + packets

    def _learn_sender(self, state: _Sender, window_index: int, activity: SenderActivity, changed: bool) -> None:
        if state.pending_window is not None and (changed or not self._pending_live(state, window_index)):
            self._flush_pending(state)
        history = self._port_set(state, window_index)
        moved_alone = bool(history) and not changed and _outside_share(activity, history) >= self.moved_packet_share
        for port in _window_port_set(activity, self.port_min_share):
            state.ports[port] = window_index
        if changed:
            for port in state.pending:
                state.ports[port] = window_index
            state.pending, state.pending_window = {}, None
        state.stable_windows = 0 if (changed or moved_alone) else state.stable_windows + 1
        if len(state.ports) > self.max_ports_per_sender:
            newest = sorted(state.ports.items(), key=lambda item: (-item[1], item[0]))[: self.max_ports_per_sender]
            state.ports = dict(newest)

    def _port_set(self, state: _Sender, window_index: int) -> set[int]:
        return {port for port, last in state.ports.items() if window_index - last <= self.history_windows}

    def _flush_pending(self, state: _Sender) -> None:
        if state.pending_window is None:
            return
        for port in state.pending:
            state.ports[port] = state.pending_window
        state.pending, state.pending_window = {}, None
        state.stable_windows = 0

    def _expire(self, window_index: int) -> None:
        stale = [sender for sender, state in self._senders.items()
                 if window_index - state.last_live > self.history_windows]
        for sender in stale:
            del self._senders[sender]
        if len(self._senders) > self.max_senders:
            # NOTE: the cap drops the senders seen longest ago; a sender dropped
            # this way starts again without a port set when it comes back.
            order = sorted(self._senders.items(), key=lambda item: (item[1].last_live, item[0]))
            for sender, _ in order[: len(self._senders) - self.max_senders]:
                del self._senders[sender]

    def forget(self, senders: Iterable[str]) -> None:
        """Drop expired senders so the state stays bounded by the live senders."""
        for sender in senders:
            self._senders.pop(sender, None)

    def save(self, directory: Path) -> None:
        """Write every sender's port set and cluster tenure as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        senders = {
            sender: [state.last_live, state.first_live, state.last_active, state.cluster_id, state.cluster_since, state.stable_windows,
                     {str(port): last for port, last in sorted(state.ports.items())},
                     {str(port): packets for port, packets in sorted(state.pending.items())}, state.pending_window]
            for sender, state in sorted(self._senders.items())
        }
        document = {"version": STATE_VERSION, "senders": senders}
        (directory / STATE_FILE).write_text(json.dumps(document), encoding="utf-8")

    def load(self, directory: Path) -> None:
        """Restore the state written by ``save``; raises ``StateError`` when it is missing or malformed."""
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
                raise ValueError(f"not version {STATE_VERSION}")
            senders = {str(sender): _decode_sender(entry) for sender, entry in document["senders"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(f"cannot read member port state {path}: {error!r}; restore a matching checkpoint") \
                from error
        self._senders = senders


def _decode_sender(entry: Sequence[Any]) -> _Sender:
    last_live, first_live, last_active, cluster_id, cluster_since, stable, ports, pending, pending_window = entry
    return _Sender(
        last_live=int(last_live),
        first_live=int(first_live),
        last_active=None if last_active is None else int(last_active),
        cluster_id=None if cluster_id is None else str(cluster_id),
        cluster_since=int(cluster_since),
        stable_windows=int(stable),
        ports={int(port): int(last) for port, last in ports.items()},
        pending={int(port): int(packets) for port, packets in pending.items()},
        pending_window=None if pending_window is None else int(pending_window),
    )


def _outside_share(activity: SenderActivity, history: set[int]) -> float:
    """Return the share of the window's packets that went to ports outside ``history``."""
    if activity.packets <= 0:
        return 0.0
    outside = sum(packets for port, packets in activity.dst_ports.items() if int(port) not in history)
    return outside / activity.packets


def _window_port_set(activity: SenderActivity, min_share: float) -> set[int]:
    if activity.packets <= 0:
        return set()
    return {int(port) for port, packets in activity.dst_ports.items() if packets >= min_share * activity.packets}


def _subgroups(cluster_id: str, members: frozenset[str],
               known_labels: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {(WHOLE_CLUSTER, cluster_id): sorted(members)}
    for sender in sorted(members):
        subnet = subnet_of(sender, 24)
        if subnet != NOT_AN_ADDRESS:
            groups.setdefault((SUBNET, subnet), []).append(sender)
        label = known_labels.get(sender)
        if label and label != UNKNOWN_LABEL:
            groups.setdefault((LABEL, label), []).append(sender)
    return groups


def _top_ports(counts: Mapping[int, int], count: int = 5) -> list[int]:
    return [port for port, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:count]]
