"""Run clustering, tracking, drift and alert rules on one closed window, and checkpoint them together.

This is the one object the daemon calls per clustering run. It chooses no
senders (the caller passes the live senders and their vectors) and no
schedule (the caller decides which windows are clustered).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from darkvec_stream.alerts.model import Alert
from darkvec_stream.clusters.alerting import AlertRules
from darkvec_stream.clusters.clustering import Clustering, SenderClusterer
from darkvec_stream.clusters.emerging import STATE_FILE as EMERGING_STATE_FILE
from darkvec_stream.clusters.emerging import EmergingGroup, EmergingGroups
from darkvec_stream.clusters.member_drift import STATE_FILE as MEMBER_STATE_FILE
from darkvec_stream.clusters.member_drift import MemberPortDrift
from darkvec_stream.clusters.drift import (
    ClusterDrift,
    ClusterObservation,
    DriftFinding,
    LabelChange,
    LabelChanges,
    as_sender_label,
)
from darkvec_stream.clusters.profile import UNKNOWN_LABEL, ClusterProfile, profile_clusters
from darkvec_stream.clusters.tracking import EMERGED, REEMERGED, SPLIT, Churn, ClusterTracker, TrackingResult
from darkvec_stream.errors import StateError
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

MONITOR_FILE = "monitor.json"


@dataclass(frozen=True, slots=True)
class ClusterUpdate:
    """Everything one clustering run produced; ``profiles`` are keyed by global cluster id."""

    window_index: int
    clustering: Clustering
    tracking: TrackingResult
    profiles: Mapping[str, ClusterProfile]
    findings: tuple[DriftFinding, ...]
    label_changes: tuple[LabelChange, ...]
    alerts: tuple[Alert, ...]
    emerging: Mapping[str, EmergingGroup] = field(default_factory=dict)

    @property
    def churn(self) -> Churn:
        return self.tracking.churn


class ClusterMonitor:
    """Cluster the live senders of a window, track the clusters and raise alerts.

    >>> from darkvec_stream.clusters.synthetic import nested_blobs
    >>> from darkvec_stream.windows.model import ClosedWindow
    >>> blobs = nested_blobs(group_sizes=((40,), (30,)), background=0, seed=1)
    >>> window = ClosedWindow(0, 0, 3_600_000_000_000, (), {}, 0, 0, 0)
    >>> update = ClusterMonitor().update(window, blobs.keys, blobs.vectors)
    >>> update.churn.active, update.alerts
    (2, ())
    """

    def __init__(
        self,
        clusterer: SenderClusterer | None = None,
        tracker: ClusterTracker | None = None,
        drift: ClusterDrift | None = None,
        label_changes: LabelChanges | None = None,
        rules: AlertRules | None = None,
        emerging: EmergingGroups | None = None,
        member_drift: MemberPortDrift | None = None,
        size_burst_newcomer_windows: int = 24,
    ) -> None:
        self.clusterer = clusterer or SenderClusterer()
        self.tracker = tracker or ClusterTracker()
        # The whole-cluster port rule mistakes senders joining for a change;
        # MemberPortDrift compares each sender with its own past instead.
        self.drift = drift or ClusterDrift(port_rule=False)
        self.label_changes = label_changes or LabelChanges()
        self.rules = rules or AlertRules()
        self.emerging = emerging or EmergingGroups()
        self.member_drift = member_drift or MemberPortDrift()
        # A size burst counts only joined senders first live this recently,
        # because a new group sits in a noise cluster for several runs first.
        self.size_burst_newcomer_windows = size_burst_newcomer_windows
        self._runs = 0

    def update(
        self,
        window: ClosedWindow,
        keys: Sequence[str],
        vectors: np.ndarray,
        labels: Mapping[str, object] | None = None,
    ) -> ClusterUpdate:
        """Run every step on ``window`` for the senders ``keys`` with unit ``vectors``.

        ``labels`` maps senders to a label string, None, or a decision with
        ``label`` and ``confidence`` (a kNN ``LabelDecision``).
        """
        labels = labels or {}
        decisions = {sender: as_sender_label(value) for sender, value in labels.items()}
        known = {sender: d.label for sender, d in decisions.items()
                 if d.label is not None and d.confidence >= self.label_changes.min_confidence}

        # 1. Cluster, carve out newcomers on novel ports, and give the clusters their global ids.
        clustering = self.clusterer.cluster(keys, vectors)
        clustering, carved = self.emerging.update(clustering, vectors, window)
        previous = self.tracker.active
        tracking = self.tracker.update(clustering.clusters(), window.index)
        self._runs += 1
        emerging = {tracking.ids[group.label]: group for group in carved}

        # 2. Profile each cluster on this window's traffic.
        local_profiles = profile_clusters(clustering, [window], known)
        profiles = {tracking.ids[label]: profile for label, profile in local_profiles.items()}

        # 3. Ask the sender histories who joined each cluster and how long
        #    re-emerged members were gone, before this run updates them.
        within = self.drift.size_burst_windows + 1
        joined = {cluster_id: self.member_drift.joined_ports(members, cluster_id, window, within,
                                                             self.size_burst_newcomer_windows)
                  for cluster_id, members in tracking.members.items()}
        silent = {transition.cluster_id: self._silent_share(tracking.members[transition.cluster_id], window.index)
                  for transition in tracking.of_kind(REEMERGED)}
        new_ids = [transition.cluster_id for transition in tracking.transitions
                   if transition.kind in (EMERGED, SPLIT) and transition.cluster_id in tracking.members]
        shared = {cluster_id: self.member_drift.shared_port(tracking.members[cluster_id], window)
                  for cluster_id in new_ids}
        co_active = {cluster_id: self.member_drift.co_active_share(tracking.members[cluster_id], window)
                     for cluster_id in new_ids}

        # 4. Feed the drift series and the sender port sets; forget clusters tracking has forgotten.
        member_ports = _member_ports(clustering, window)
        observations = {}
        for label, profile in local_profiles.items():
            cluster_id = tracking.ids[label]
            observations[cluster_id] = ClusterObservation(
                size=profile.size,
                centroid=clustering.centroids[label],
                port_packets=profile.port_packets,
                main_label_share=_main_label_share(profile.label_counts),
                member_ports=member_ports.get(label, ()),
                joined=joined[cluster_id].joined,
                joined_port=joined[cluster_id].port,
                joined_port_share=joined[cluster_id].port_share,
            )
        findings = self.drift.update(window.index, observations)
        findings.extend(self.member_drift.update(window, keys, tracking.members, known))
        self.drift.forget(self.tracker.known_ids())

        # 5. Label changes, then the alerts.
        changes = self.label_changes.update(window.index, labels, set(window.activity))
        alerts = self.rules.build(window, self._runs, tracking, profiles, findings, changes, known,
                                  newcomer_shares=_newcomer_shares(tracking, previous, self.emerging.is_newcomer),
                                  emerging=emerging, cluster_ages=self._cluster_ages(tracking, window.index),
                                  silent_shares=silent, shared_ports=shared, co_active_shares=co_active)
        logger.info("clustered window %s: %s clusters, %s alerts, churn %s",
                    window.index, clustering.n_clusters, len(alerts), tracking.churn.to_json())
        return ClusterUpdate(window.index, clustering, tracking, profiles, tuple(findings), tuple(changes),
                             tuple(alerts), emerging)

    def _silent_share(self, members: frozenset[str], window_index: int) -> float:
        """Return the share of ``members`` out of the live senders for ``reemerge_min_absent_windows`` or more.

        A cluster id can vanish while its senders stay live in other
        clusters; only senders that were really silent make a return.
        """
        if not members:
            return 0.0
        silent = 0
        for sender in members:
            gap = self.member_drift.absent_windows(sender, window_index)
            silent += gap is None or gap >= self.rules.reemerge_min_absent_windows
        return silent / len(members)

    def _cluster_ages(self, tracking: TrackingResult, window_index: int) -> dict[str, int]:
        ages = {}
        for cluster_id in tracking.members:
            first = self.tracker.first_window(cluster_id)
            ages[cluster_id] = window_index - first if first is not None else 0
        return ages

    def forget_senders(self, senders: Sequence[str]) -> None:
        """Drop expired senders from the label state (tracking forgets them with their clusters)."""
        self.label_changes.forget(senders)
        self.emerging.forget(senders)
        self.member_drift.forget(senders)

    def save(self, directory: Path) -> None:
        """Write tracker, drift and label state as JSON files into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tracker.save(directory)
        self.drift.save(directory)
        self.label_changes.save(directory)
        self.emerging.save(directory)
        self.member_drift.save(directory)
        (directory / MONITOR_FILE).write_text(json.dumps({"version": 1, "runs": self._runs}), encoding="utf-8")

    def load(self, directory: Path) -> None:
        """Restore the state written by ``save``; raises ``StateError`` if a file is missing or malformed."""
        directory = Path(directory)
        path = directory / MONITOR_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            runs = int(document["runs"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"cannot read cluster monitor state {path}: {error!r}") from error
        self.tracker.load(directory)
        self.drift.load(directory)
        self.label_changes.load(directory)
        if (directory / EMERGING_STATE_FILE).is_file():
            self.emerging.load(directory)
        else:
            # Checkpoints written before emerging groups existed: newcomers
            # and the port history rebuild from the next runs.
            logger.warning("no %s in %s: emerging groups start empty", EMERGING_STATE_FILE, directory)
        if (directory / MEMBER_STATE_FILE).is_file():
            self.member_drift.load(directory)
        else:
            # Checkpoints written before sender port sets existed: the sets
            # rebuild over the next stable_windows active windows.
            logger.warning("no %s in %s: sender port sets start empty", MEMBER_STATE_FILE, directory)
        self._runs = runs


def _main_label_share(label_counts: Mapping[str, int]) -> float | None:
    known = Counter({label: count for label, count in label_counts.items() if label != UNKNOWN_LABEL})
    total = sum(known.values())
    if total == 0:
        return None
    return known.most_common(1)[0][1] / total


def _newcomer_shares(
    tracking: TrackingResult, previous: Mapping[str, frozenset[str]], is_newcomer: Callable[[str], bool]
) -> dict[str, float]:
    """Map each split child to the share of its members that are new: absent from its parent at the
    previous run, or first clustered within the newcomer span (a new group sits in an old cluster
    for a few runs before the embedding sets it apart)."""
    shares = {}
    for transition in tracking.of_kind(SPLIT):
        if tracking.status.get(transition.cluster_id) != SPLIT or not transition.related:
            continue
        members = tracking.members[transition.cluster_id]
        parent = previous.get(transition.related[0], frozenset())
        new = [sender for sender in members if sender not in parent or is_newcomer(sender)]
        shares[transition.cluster_id] = len(new) / len(members) if members else 0.0
    return shares


def _member_ports(clustering: Clustering, window: ClosedWindow) -> dict[int, tuple[frozenset[int], ...]]:
    """Map each cluster label to the destination port sets of its members active in ``window``."""
    ports: dict[int, list[frozenset[int]]] = {}
    for sender, label in zip(clustering.keys, clustering.labels.tolist()):
        activity = window.activity.get(sender)
        if label >= 0 and activity is not None and activity.dst_ports:
            ports.setdefault(label, []).append(frozenset(int(port) for port in activity.dst_ports))
    return {label: tuple(sets) for label, sets in ports.items()}
