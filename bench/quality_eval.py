"""Score sender vectors, clusterings and alerts against the simulator's exact truth.

Label quality is the project's leave-one-out evaluation with the simulator's
classes as ground truth; cluster quality is the adjusted Rand index against
true groups; alerts are matched to the simulated events. Nothing here trains
a model or runs the pipeline.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from bench.quality_data import (
    COORDINATED_KINDS,
    WORM_GROUP,
    cluster_truth,
    evaluation_labels,
    group_members,
    true_class,
)
from bench.quality_pipeline import NS_PER_S, AlertRecord, PipelineRun
from darkvec_stream.alerts.model import AlertType
from darkvec_stream.clusters.clustering import SenderClusterer
from darkvec_stream.clusters.quality import adjusted_rand, merges_and_splits
from darkvec_stream.labels import KnnLabeller, leave_one_out
from darkvec_stream.simulate import Truth

# An alert is matched to an event when most of the senders it is about
# (``AlertRecord.subject``: the moved senders of a subgroup port change, the
# joined senders of a size burst, else the cluster) belong to the event's group.
EVENT_MAJORITY = 0.5
# A drift alert on the port-changing group counts as true this many windows
# after the change; later ones are repeats of an old change.
DRIFT_MATCH_WINDOWS = 24
CLUSTER_ALERTS = (AlertType.NEW_CLUSTER, AlertType.REEMERGED_CLUSTER, AlertType.CLUSTER_DRIFT)


@dataclass(frozen=True)
class LabelScores:
    """Leave-one-out scores of one labeller on one set of vectors."""

    name: str
    queries: int
    classes: int
    macro_f1: float
    accuracy: float
    coverage: float
    precision_decided: float
    macro_f1_unknown: float
    unknown_recall: float
    precision_decided_unknown: float
    per_class_f1: dict[str, float]


def labellers(k: int, min_similarity: float, min_margin: float) -> dict[str, KnnLabeller]:
    """Return the votes compared: majority with and without abstain, and the published compat vote."""
    return {
        "majority (abstain)": KnnLabeller(k=k, min_similarity=min_similarity, min_margin=min_margin),
        "majority (no abstain)": KnnLabeller(k=k, min_similarity=-1.0, min_margin=0.0),
        "darkvec-compat": KnnLabeller(k=k, vote="darkvec-compat", min_similarity=-1.0, min_margin=0.0),
    }


def score_labels(name: str, senders: Sequence[str], vectors: np.ndarray, truth: Truth,
                 labeller: KnnLabeller, max_unknown: int = 5000) -> LabelScores:
    """Run leave-one-out over the scanner and Mirai-like senders among ``senders``."""
    labels = evaluation_labels(truth, list(senders))
    report = leave_one_out(list(senders), vectors, labels, labeller, include_unknown=True,
                           max_unknown=max_unknown, seed=0)
    without, decided, with_unknown = report.without_unknown, report.without_unknown_decided, report.with_unknown
    assert with_unknown is not None
    unknown = [score for score in with_unknown.classes if score.label == "unknown"]
    return LabelScores(
        name=name,
        queries=without.queries,
        classes=len(without.classes),
        macro_f1=without.macro_f1,
        accuracy=without.accuracy,
        coverage=1.0 - without.abstain_rate,
        precision_decided=decided.accuracy,
        macro_f1_unknown=with_unknown.macro_f1,
        unknown_recall=unknown[0].recall if unknown else 0.0,
        precision_decided_unknown=with_unknown.precision_decided,
        per_class_f1={score.label: score.f1 for score in without.classes},
    )


@dataclass(frozen=True)
class PipelineLabelScores:
    """Scores of the kNN labels the running pipeline gave, against the truth."""

    hidden_targets: int
    hidden_targets_correct: int
    hidden_targets_wrong: int
    others: int
    others_labelled: int
    wrong_by_group: dict[str, dict[str, int]]

    @property
    def recall(self) -> float:
        return self.hidden_targets_correct / self.hidden_targets if self.hidden_targets else 0.0

    @property
    def precision(self) -> float:
        given = self.hidden_targets_correct + self.hidden_targets_wrong + self.others_labelled
        return self.hidden_targets_correct / given if given else 0.0


def score_pipeline_labels(run: PipelineRun, truth: Truth) -> PipelineLabelScores:
    """Score the kNN labels the pipeline gave senders absent from the operator's list.

    Targets are unlisted scanners (Mirai-like senders carry the fingerprint,
    so the pipeline never needs kNN for them); every other sender should get
    no label at all.
    """
    correct = wrong = targets = others = others_labelled = 0
    wrong_by_group: dict[str, Counter[str]] = {}
    for sender, value in run.pipeline.sender_labels.items():
        if value.source != "knn":
            continue
        expected = true_class(truth, sender)
        if value.label is not None and value.label != expected:
            wrong_by_group.setdefault(truth.senders[sender].group, Counter())[value.label] += 1
        if expected is not None and expected != "mirai":
            targets += 1
            correct += value.label == expected
            wrong += value.label is not None and value.label != expected
        elif expected is None:
            others += 1
            others_labelled += value.label is not None
    return PipelineLabelScores(targets, correct, wrong, others, others_labelled,
                               {group: dict(labels) for group, labels in sorted(wrong_by_group.items())})


@dataclass(frozen=True)
class ClusterScores:
    """ARI of one clustering against the truth, with the groups it merged or split."""

    name: str
    senders: int
    clusters: int
    noise: int
    ari_group: float
    ari_subgroup: float
    ari_group_coordinated: float
    merged: dict[int, list[str]]
    split: dict[str, list[int]]
    seconds: float


def score_clustering(name: str, clusterer: SenderClusterer, senders: Sequence[str], vectors: np.ndarray,
                     truth: Truth) -> ClusterScores:
    """Cluster ``senders`` and score the result at group and sub-group level.

    ``ari_group_coordinated`` scores only senders of coordinated groups, so
    it does not reward or punish how lone senders (noise, backscatter) fall.
    """
    started = time.perf_counter()
    clustering = clusterer.cluster(list(senders), vectors)
    seconds = time.perf_counter() - started
    groups = cluster_truth(truth, list(senders), "group")
    subgroups = cluster_truth(truth, list(senders), "subgroup")
    coordinated = [row for row, sender in enumerate(senders)
                   if truth.senders[sender].kind in COORDINATED_KINDS]
    merged, split = merges_and_splits([groups[row] for row in coordinated], clustering.labels[coordinated])
    return ClusterScores(
        name=name,
        senders=len(senders),
        clusters=clustering.n_clusters,
        noise=int((clustering.labels < 0).sum()),
        ari_group=adjusted_rand(groups, clustering.labels),
        ari_subgroup=adjusted_rand(subgroups, clustering.labels),
        ari_group_coordinated=adjusted_rand([groups[row] for row in coordinated], clustering.labels[coordinated]),
        merged=merged,
        split=split,
        seconds=seconds,
    )


@dataclass(frozen=True)
class EventDetection:
    """The first alert matching one simulated event, with its lag and member overlap."""

    event: str
    event_window: int
    alert_window: int | None
    alert_type: str | None
    member_share: float
    group_recall: float
    first_activity_window: int | None = None

    @property
    def lag_windows(self) -> int | None:
        return None if self.alert_window is None else self.alert_window - self.event_window

    @property
    def lag_after_activity(self) -> int | None:
        """Windows from the group's first traffic after the event to the alert: no rule can see it sooner."""
        if self.alert_window is None or self.first_activity_window is None:
            return None
        return self.alert_window - self.first_activity_window


@dataclass(frozen=True)
class JudgedAlert:
    """One cluster alert with its verdict and the true groups of the senders it is about."""

    window_index: int
    alert_type: str
    rule: str | None
    cluster_id: str | None
    true: bool
    subject_size: int
    subject_groups: dict[str, int]
    summary: str


@dataclass(frozen=True)
class AlertScores:
    """Alerts of one run matched against the simulated events."""

    days: float
    detections: tuple[EventDetection, ...]
    counts: dict[str, int]
    true_cluster_alerts: int
    cluster_alerts: int
    label_changes_correct: int
    label_changes: int
    judged: tuple[JudgedAlert, ...] = ()

    @property
    def cluster_precision(self) -> float:
        return self.true_cluster_alerts / self.cluster_alerts if self.cluster_alerts else 1.0

    @property
    def false_cluster_alerts_per_day(self) -> float:
        return (self.cluster_alerts - self.true_cluster_alerts) / self.days if self.days else 0.0


def _share(members: frozenset[str], group: frozenset[str]) -> float:
    return len(members & group) / len(members) if members else 0.0


def score_alerts(run: PipelineRun, truth: Truth) -> AlertScores:
    """Match the run's cluster alerts to the onset and port-change events, and check label changes."""
    window_ns = run.settings.windows.window_s * NS_PER_S
    events = {event["type"]: event for event in truth.events}
    onset = events.get("onset")
    change = events.get("port_change")
    worm = group_members(truth, onset["group"]) if onset else frozenset()
    changing = group_members(truth, change["group"]) if change else frozenset()
    onset_window = onset["time_ns"] // window_ns if onset else None
    change_window = change["time_ns"] // window_ns if change else None

    def is_true(record: AlertRecord) -> bool:
        alert = record.alert
        subject = record.subject or record.members
        if onset_window is not None and alert.window_index >= onset_window \
                and _share(subject, worm) >= EVENT_MAJORITY:
            return True
        return (change_window is not None and alert.type == AlertType.CLUSTER_DRIFT
                and change_window <= alert.window_index <= change_window + DRIFT_MATCH_WINDOWS
                and _share(subject, changing) >= EVENT_MAJORITY)

    cluster_alerts = [record for record in run.alerts if record.alert.type in CLUSTER_ALERTS]
    detections = []
    if onset is not None:
        active_worm = worm & set(run.pipeline.embedding.keys())
        detections.append(_first_match("worm onset", onset_window, cluster_alerts, worm, active_worm,
                                       (AlertType.NEW_CLUSTER, AlertType.REEMERGED_CLUSTER)))
    if change is not None:
        detection = _first_match("port-set change", change_window, cluster_alerts, changing, changing,
                                 (AlertType.CLUSTER_DRIFT,))
        detections.append(replace(detection, first_activity_window=_first_activity(run, changing, change_window)))

    label_changes = [record.alert for record in run.alerts if record.alert.type == AlertType.LABEL_CHANGE]
    label_correct = sum(1 for alert in label_changes
                        if alert.sender is not None
                        and alert.evidence.get("current") == (true_class(truth, alert.sender) or "unknown"))
    days = (run.windows[-1].end_ns - run.windows[0].start_ns) / (86_400 * NS_PER_S) if run.windows else 0.0
    return AlertScores(
        days=days,
        detections=tuple(detections),
        counts=dict(Counter(record.alert.type.value for record in run.alerts)),
        true_cluster_alerts=sum(1 for record in cluster_alerts if is_true(record)),
        cluster_alerts=len(cluster_alerts),
        label_changes_correct=label_correct,
        label_changes=len(label_changes),
        judged=tuple(_judge(record, truth, is_true(record)) for record in cluster_alerts),
    )


def _judge(record: AlertRecord, truth: Truth, true: bool) -> JudgedAlert:
    subject = record.subject or record.members
    groups = Counter(truth.senders[sender].group if sender in truth.senders else "unknown" for sender in subject)
    alert = record.alert
    return JudgedAlert(alert.window_index, alert.type.value, alert.evidence.get("rule"), alert.cluster_id, true,
                       len(subject), dict(groups.most_common(4)), alert.summary)


def _first_activity(run: PipelineRun, group: frozenset[str], from_window: int) -> int | None:
    """Return the first window at or after ``from_window`` in which a sender of ``group`` sent traffic."""
    for window in run.windows:
        if window.index >= from_window and any(sender in group for sentence in window.sentences
                                               for sender in sentence):
            return window.index
    return None


def _first_match(event: str, event_window: int, alerts: list[AlertRecord], group: frozenset[str],
                 reachable: frozenset[str] | set[str], types: tuple[AlertType, ...]) -> EventDetection:
    for record in alerts:
        alert = record.alert
        if alert.type in types and alert.window_index >= event_window \
                and _share(record.subject or record.members, group) >= EVENT_MAJORITY:
            subject = record.subject or record.members
            recall = len(subject & group) / len(reachable) if reachable else 0.0
            return EventDetection(event, event_window, alert.window_index, alert.type.value,
                                  _share(subject, group), recall)
    return EventDetection(event, event_window, None, None, 0.0, 0.0)


__all__ = [
    "AlertScores", "ClusterScores", "EventDetection", "JudgedAlert", "LabelScores", "PipelineLabelScores",
    "WORM_GROUP", "labellers", "score_alerts", "score_clustering", "score_labels", "score_pipeline_labels",
]
