"""Decide which cluster events become alerts, and build explained ``Alert`` values.

Input is one window's tracking result, cluster profiles, drift findings and
label changes; output is ``Alert`` values with a one-sentence summary and
the numbers behind them. Rendering, delivery, deduplication and rate limits
belong to the alerts stage.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from darkvec_stream.alerts.model import Alert, AlertType, Severity, make_alert_id
from darkvec_stream.clusters.drift import DETECTOR, PORT_SET_CHANGED, SIZE_BURST, DriftFinding, LabelChange
from darkvec_stream.clusters.emerging import EmergingGroup
from darkvec_stream.clusters.member_drift import JoinedPorts
from darkvec_stream.clusters.profile import ClusterProfile
from darkvec_stream.clusters.tracking import EMERGED, REEMERGED, SPLIT, TrackingResult, Transition
from darkvec_stream.errors import ConfigError
from darkvec_stream.windows.model import ClosedWindow


class AlertRules:
    """Turn tracking transitions, drift findings and label changes into alerts.

    - ``new_cluster``: a cluster new to tracking with at least
      ``min_cluster_size`` members of which at least ``min_unknown_share``
      are unlabelled. New means emerged, or a split child of which at least
      ``min_newcomer_share`` of the members are newcomers, because a new
      group first lands in an old cluster and leaves it later. A group of
      newcomers carved out on novel ports is new too, and then
      ``emerging_min_size`` members suffice because the novel ports are the
      evidence. A carved group on ports already carved recently (a later
      wave of the same outbreak) raises nothing. Every new cluster also needs
      at least ``new_cluster_min_port_share`` of its members to share one
      port (in their port sets or this window), and at least
      ``new_cluster_min_co_active_share`` of them to have sent their last
      traffic within the same two windows: lone scanners and noise that
      cluster together share neither a port nor their timing.
    - ``reemerged_cluster``: a cluster matched back to one that had
      disappeared for at least ``reemerge_min_absent_windows`` windows (a
      shorter gap is tracking flicker or a periodic campaign), with at least
      ``min_cluster_size`` members, a member Jaccard index of at least
      ``reemerge_min_jaccard`` with its last run (the same group, not a mix
      sharing a few senders), and at least ``reemerge_min_silent_share`` of
      its members out of the live senders for the same span (a cluster id
      can vanish while its senders sit in other clusters).
    - ``cluster_drift``: a size burst of a cluster with at least
      ``min_cluster_size`` members, tracked for at least
      ``min_cluster_age_windows`` windows (severity medium), or, when no rule
      fired for it and ``detector_alerts`` is on, detector alarms (severity
      low). A port-set change of a subgroup of senders (``MemberPortDrift``)
      needs neither the size, the age nor the warm-up, because it compares
      senders with their own past; a whole-cluster port rule finding
      follows the cluster gates.
    - ``label_change``: every confident label change of a sender.

    No cluster alert fires in the first ``warmup_windows`` runs: clusters
    cover the senders of the last ``clusters.active_s``, so they grow until
    that span is filled, and every cluster emerges on the first run.
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_unknown_share: float = 0.5,
        warmup_windows: int = 1,
        sample_size: int = 10,
        top_ports: int = 5,
        min_newcomer_share: float = 0.5,
        emerging_min_size: int = 5,
        min_cluster_age_windows: int = 6,
        detector_alerts: bool = False,
        reemerge_min_absent_windows: int = 24,
        reemerge_min_jaccard: float = 0.5,
        reemerge_min_silent_share: float = 0.5,
        new_cluster_min_port_share: float = 0.8,
        new_cluster_min_co_active_share: float = 0.7,
    ) -> None:
        if min_cluster_size < 1 or sample_size < 1 or top_ports < 1 or warmup_windows < 0:
            raise ConfigError("min_cluster_size, sample_size and top_ports must be at least 1, warmup_windows >= 0; "
                              f"got {min_cluster_size}, {sample_size}, {top_ports}, {warmup_windows}")
        for name, share in (("min_unknown_share", min_unknown_share), ("min_newcomer_share", min_newcomer_share),
                            ("reemerge_min_jaccard", reemerge_min_jaccard),
                            ("reemerge_min_silent_share", reemerge_min_silent_share),
                            ("new_cluster_min_port_share", new_cluster_min_port_share),
                            ("new_cluster_min_co_active_share", new_cluster_min_co_active_share)):
            if not 0.0 <= share <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {share}")
        if emerging_min_size < 1 or min_cluster_age_windows < 0:
            raise ConfigError("emerging_min_size must be at least 1 and min_cluster_age_windows >= 0; "
                              f"got {emerging_min_size}, {min_cluster_age_windows}")
        self.min_cluster_size = min_cluster_size
        self.min_unknown_share = min_unknown_share
        self.warmup_windows = warmup_windows
        self.sample_size = sample_size
        self.top_ports = top_ports
        self.min_newcomer_share = min_newcomer_share
        self.emerging_min_size = emerging_min_size
        self.min_cluster_age_windows = min_cluster_age_windows
        self.detector_alerts = detector_alerts
        self.reemerge_min_absent_windows = reemerge_min_absent_windows
        self.reemerge_min_jaccard = reemerge_min_jaccard
        self.reemerge_min_silent_share = reemerge_min_silent_share
        self.new_cluster_min_port_share = new_cluster_min_port_share
        self.new_cluster_min_co_active_share = new_cluster_min_co_active_share

    def build(
        self,
        window: ClosedWindow,
        windows_seen: int,
        tracking: TrackingResult,
        profiles: Mapping[str, ClusterProfile],
        findings: Sequence[DriftFinding],
        label_changes: Sequence[LabelChange],
        known_labels: Mapping[str, str],
        newcomer_shares: Mapping[str, float] | None = None,
        emerging: Mapping[str, EmergingGroup] | None = None,
        cluster_ages: Mapping[str, int] | None = None,
        silent_shares: Mapping[str, float] | None = None,
        shared_ports: Mapping[str, JoinedPorts] | None = None,
        co_active_shares: Mapping[str, float] | None = None,
    ) -> list[Alert]:
        """Return this window's alerts, ordered by type then subject.

        ``windows_seen`` counts the clustering runs so far, this one included;
        ``profiles`` are keyed by global cluster id; ``known_labels`` are the
        confident labels used for ``sender_labels``. ``newcomer_shares`` maps
        split children to the share of members their parent lacked at the
        previous run, ``emerging`` maps cluster ids to carved groups, and
        ``cluster_ages`` maps ids to the windows since tracking first saw them.
        ``silent_shares`` maps re-emerged ids to the share of members that
        were out of the live senders (None: not measured, not required), and
        ``shared_ports`` maps new ids to the port most members share, and
        ``co_active_shares`` maps them to the share of members whose last
        traffic fell within the same two windows.
        """
        alerts: list[Alert] = []
        warm = windows_seen > self.warmup_windows
        for transition in tracking.transitions:
            if not warm:
                break
            if transition.kind in (EMERGED, SPLIT) and tracking.status.get(transition.cluster_id) == transition.kind:
                alert = self._new_cluster(window, transition, tracking, profiles[transition.cluster_id], known_labels,
                                          (newcomer_shares or {}).get(transition.cluster_id),
                                          (emerging or {}).get(transition.cluster_id),
                                          (shared_ports or {}).get(transition.cluster_id),
                                          (co_active_shares or {}).get(transition.cluster_id))
                if alert:
                    alerts.append(alert)
            elif transition.kind == REEMERGED:
                silent = None if silent_shares is None else silent_shares.get(transition.cluster_id)
                if self._is_return(transition, silent):
                    alerts.append(self._reemerged(window, transition, tracking, profiles[transition.cluster_id],
                                                  known_labels, silent))
        members_findings = [f for f in findings if f.rule == PORT_SET_CHANGED and "subgroup" in f.evidence]
        cluster_findings = [f for f in findings if not (f.rule == PORT_SET_CHANGED and "subgroup" in f.evidence)]
        alerts.extend(self._rule_alert(window, finding, tracking, profiles[finding.cluster_id], known_labels)
                      for finding in members_findings if finding.cluster_id in profiles)
        if warm:
            aged = {cid: profile for cid, profile in profiles.items()
                    if cluster_ages is None or cluster_ages.get(cid, 0) >= self.min_cluster_age_windows}
            alerts.extend(self._drift(window, tracking, aged, cluster_findings, known_labels))
        cluster_of = {sender: cid for cid, members in tracking.members.items() for sender in members}
        alerts.extend(self._label_change(window, change, cluster_of.get(change.sender), profiles, known_labels)
                      for change in label_changes)
        return alerts

    def _new_cluster(
        self, window: ClosedWindow, transition: Transition, tracking: TrackingResult, profile: ClusterProfile,
        known_labels: Mapping[str, str], newcomer_share: float | None, emerging: EmergingGroup | None,
        shared: JoinedPorts | None, co_active: float | None,
    ) -> Alert | None:
        # A split child counts as new only when its members are mostly
        # newcomers to the parent; otherwise an old group merely divided.
        is_split = transition.kind == SPLIT
        if emerging is None and is_split and (newcomer_share is None or newcomer_share < self.min_newcomer_share):
            return None
        if emerging is not None and emerging.repeat_of_run is not None:
            # A later wave of an outbreak already reported on the same ports.
            return None
        min_size = self.emerging_min_size if emerging is not None else self.min_cluster_size
        if profile.size < min_size or profile.unknown_share < self.min_unknown_share:
            return None
        if shared is not None and shared.port_share < self.new_cluster_min_port_share:
            return None
        if co_active is not None and co_active < self.new_cluster_min_co_active_share:
            return None
        severity = Severity.HIGH if profile.size >= 10 * self.min_cluster_size else Severity.MEDIUM
        summary = (f"New cluster {transition.cluster_id} of {profile.size} senders appeared, "
                   f"{profile.unknown_share:.0%} of them unlabelled, {_port_phrase(profile)}.")
        evidence: dict[str, Any] = {
            "unknown_share": round(profile.unknown_share, 6), "min_unknown_share": self.min_unknown_share,
            "size": profile.size, "min_cluster_size": min_size,
            "silhouette": _rounded(profile.silhouette), "subnets_24": profile.subnets_24,
        }
        if shared is not None:
            evidence.update({"shared_port": shared.port, "shared_port_share": _rounded(shared.port_share),
                             "min_shared_port_share": self.new_cluster_min_port_share})
        if co_active is not None:
            evidence.update({"co_active_share": _rounded(co_active),
                             "min_co_active_share": self.new_cluster_min_co_active_share})
        if is_split:
            evidence.update({"split_from": list(transition.related), "newcomer_share": _rounded(newcomer_share),
                             "min_newcomer_share": self.min_newcomer_share})
            summary += (f" It left {', '.join(transition.related)} with {newcomer_share or 0.0:.0%} of its "
                        "members new to that cluster.")
        if emerging is not None:
            evidence.update({"rule": "emerging_newcomers", "novel_ports": list(emerging.novel_ports),
                             "novel_port_share": _rounded(emerging.novel_port_share)})
            summary += (f" Its senders are new and send {emerging.novel_port_share:.0%} of their packets to "
                        f"ports {', '.join(str(port) for port in emerging.novel_ports[:5])}, which established "
                        "senders do not use.")
        change = f"emerged@{window.index}" if not is_split else f"split@{window.index}"
        return self._alert(AlertType.NEW_CLUSTER, severity, window, transition.cluster_id, change,
                           tracking, profile, summary, evidence, known_labels)

    def _is_return(self, transition: Transition, silent_share: float | None) -> bool:
        return (transition.size_after >= self.min_cluster_size
                and (transition.absent_windows or 0) >= self.reemerge_min_absent_windows
                and (transition.jaccard or 0.0) >= self.reemerge_min_jaccard
                and (silent_share is None or silent_share >= self.reemerge_min_silent_share))

    def _reemerged(
        self, window: ClosedWindow, transition: Transition, tracking: TrackingResult, profile: ClusterProfile,
        known_labels: Mapping[str, str], silent_share: float | None,
    ) -> Alert:
        summary = (f"Cluster {transition.cluster_id} came back after {transition.absent_windows} windows "
                   f"with {profile.size} senders (member Jaccard {transition.jaccard:.2f} with its last run).")
        if silent_share is not None:
            summary += (f" {silent_share:.0%} of them sent nothing for at least "
                        f"{self.reemerge_min_absent_windows} windows before.")
        evidence = {"jaccard_vs_last_members": _rounded(transition.jaccard), "absent_windows": transition.absent_windows,
                    "size_before": transition.size_before, "size": profile.size,
                    "min_jaccard": self.reemerge_min_jaccard, "silent_share": _rounded(silent_share),
                    "min_silent_share": self.reemerge_min_silent_share}
        return self._alert(AlertType.REEMERGED_CLUSTER, Severity.LOW, window, transition.cluster_id,
                           f"reemerged@{window.index}", tracking, profile, summary, evidence, known_labels)

    def _drift(
        self, window: ClosedWindow, tracking: TrackingResult, profiles: Mapping[str, ClusterProfile],
        findings: Sequence[DriftFinding], known_labels: Mapping[str, str],
    ) -> list[Alert]:
        by_cluster: dict[str, list[DriftFinding]] = defaultdict(list)
        for finding in findings:
            by_cluster[finding.cluster_id].append(finding)
        alerts = []
        for cluster_id, cluster_findings in sorted(by_cluster.items()):
            profile = profiles.get(cluster_id)
            if profile is None or profile.size < self.min_cluster_size:
                continue
            rules = [f for f in cluster_findings if f.rule in (PORT_SET_CHANGED, SIZE_BURST)]
            for finding in rules:
                alerts.append(self._rule_alert(window, finding, tracking, profile, known_labels))
            detectors = [f for f in cluster_findings if f.rule == DETECTOR]
            if detectors and not rules and self.detector_alerts:
                alerts.append(self._detector_alert(window, cluster_id, detectors, tracking, profile, known_labels))
        return alerts

    def _rule_alert(
        self, window: ClosedWindow, finding: DriftFinding, tracking: TrackingResult, profile: ClusterProfile,
        known_labels: Mapping[str, str],
    ) -> Alert:
        evidence = dict(finding.evidence)
        change = f"{finding.rule}@{window.index}"
        sample = None
        if finding.rule == PORT_SET_CHANGED and "subgroup" in evidence:
            summary = _subgroup_summary(finding.cluster_id, evidence)
            change += f":{evidence['subgroup']}"
            sample = tuple(evidence["moved_sample"])[: self.sample_size]
        elif finding.rule == PORT_SET_CHANGED:
            summary = (f"Cluster {finding.cluster_id} changed its port set: Jaccard "
                       f"{evidence['jaccard_vs_history']:.2f} against its history (threshold "
                       f"{evidence['threshold']}), ports added {evidence['ports_added']}, "
                       f"removed {evidence['ports_removed']}.")
        else:
            summary = (f"Cluster {finding.cluster_id} grew to {evidence['size']} senders, "
                       f"{evidence['ratio']:.1f} times its recent mean of {evidence['mean_size']:.0f}.")
            if evidence.get("joined_port") is not None:
                summary += (f" {evidence['joined_port_share']:.0%} of the {evidence['joined_senders']} senders "
                            f"that joined use port {evidence['joined_port']}.")
        evidence["rule"] = finding.rule
        return self._alert(AlertType.CLUSTER_DRIFT, Severity.MEDIUM, window, finding.cluster_id, change,
                           tracking, profile, summary, evidence, known_labels, sample)

    def _detector_alert(
        self, window: ClosedWindow, cluster_id: str, findings: list[DriftFinding], tracking: TrackingResult,
        profile: ClusterProfile, known_labels: Mapping[str, str],
    ) -> Alert:
        alarms = sorted({f"{f.series}:{f.detector_name}" for f in findings})
        summary = f"Drift detectors flagged cluster {cluster_id} on {', '.join(alarms)}."
        evidence = {"rule": DETECTOR, "alarms": [dict(f.evidence) for f in findings]}
        return self._alert(AlertType.CLUSTER_DRIFT, Severity.LOW, window, cluster_id,
                           f"detector@{window.index}:{','.join(alarms)}", tracking, profile, summary, evidence,
                           known_labels)

    def _label_change(
        self, window: ClosedWindow, change: LabelChange, cluster_id: str | None,
        profiles: Mapping[str, ClusterProfile], known_labels: Mapping[str, str],
    ) -> Alert:
        profile = profiles.get(cluster_id) if cluster_id else None
        previous = change.previous or "unknown"
        severity = Severity.LOW if change.previous is None else Severity.MEDIUM
        summary = (f"Sender {change.sender} changed label from {previous} to {change.current} "
                   f"with confidence {change.confidence:.2f}.")
        evidence = {"previous": change.previous, "current": change.current,
                    "confidence": round(change.confidence, 6)}
        return Alert(
            alert_id=make_alert_id(AlertType.LABEL_CHANGE, change.sender,
                                   f"{previous}->{change.current}@{window.index}"),
            type=AlertType.LABEL_CHANGE,
            severity=severity,
            time_ns=window.end_ns,
            window_index=window.index,
            window_start_ns=window.start_ns,
            window_end_ns=window.end_ns,
            cluster_id=cluster_id,
            member_count=profile.size if profile else 1,
            sample_members=(change.sender,),
            top_ports=profile.top_ports[: self.top_ports] if profile else (),
            summary=summary,
            evidence=evidence,
            labels=dict(profile.label_counts) if profile else {},
            sender=change.sender,
            sender_labels={change.sender: change.current},
        )

    def _alert(
        self, alert_type: AlertType, severity: Severity, window: ClosedWindow, cluster_id: str, change: str,
        tracking: TrackingResult, profile: ClusterProfile, summary: str, evidence: dict[str, Any],
        known_labels: Mapping[str, str], sample: tuple[str, ...] | None = None,
    ) -> Alert:
        if sample is None:
            sample = tuple(sorted(tracking.members[cluster_id])[: self.sample_size])
        return Alert(
            alert_id=make_alert_id(alert_type, cluster_id, change),
            type=alert_type,
            severity=severity,
            time_ns=window.end_ns,
            window_index=window.index,
            window_start_ns=window.start_ns,
            window_end_ns=window.end_ns,
            cluster_id=cluster_id,
            member_count=profile.size,
            sample_members=sample,
            top_ports=profile.top_ports[: self.top_ports],
            summary=summary,
            evidence=evidence,
            labels=dict(profile.label_counts),
            sender_labels={sender: known_labels[sender] for sender in sample if sender in known_labels},
        )


def _subgroup_summary(cluster_id: str, evidence: Mapping[str, Any]) -> str:
    if evidence["subgroup_kind"] == "cluster":
        subject = f"Cluster {cluster_id}:"
    else:
        subject = f"In cluster {cluster_id}, {evidence['subgroup']}:"
    before = ", ".join(str(port) for port in evidence["ports_before"]) or "none"
    after = ", ".join(str(port) for port in evidence["ports_after"]) or "none"
    return (f"{subject} {evidence['moved_senders']} of {evidence['senders_with_port_set']} senders moved to ports "
            f"they never used: now {after}, before {before} (Jaccard {evidence['jaccard_vs_history']:.2f}, "
            f"threshold {evidence['threshold']}).")


def _port_list(profile: ClusterProfile) -> str:
    ports = [str(port) for port, _ in profile.top_ports[:3]]
    return ", ".join(ports) if ports else "none seen this window"


def _port_phrase(profile: ClusterProfile) -> str:
    if profile.top_ports:
        return f"mostly on ports {_port_list(profile)}"
    # ICMP and later IP fragments carry no destination port.
    return "with no destination port in this window (ICMP or fragments)"


def _rounded(value: float | None) -> float | None:
    if value is None or value != value:
        return None
    return round(float(value), 6)
