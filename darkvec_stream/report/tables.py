"""The report's tables: one inspection row per cluster, and the label evaluation.

A cluster row follows the inspection table of the DarkVec authors (cluster,
senders, ports, silhouette, a description) and adds the /24 spread and the
label mix. Rows are computed from an ``AnalystState``: membership and
silhouettes from the last clustering run, ports, packets and activity from
the sender history, and the current labels. It draws nothing and writes no file.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from darkvec_stream.clusters.profile import NOT_AN_ADDRESS, subnet_of
from darkvec_stream.errors import InputError
from darkvec_stream.labels.evaluate import EvaluationReport, leave_one_out
from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.query.history import SenderHistory
from darkvec_stream.query.state import AnalystState

logger = logging.getLogger(__name__)

UNLABELLED = "unlabelled"
INFERRED_SOURCE = "knn"


@dataclass(frozen=True, slots=True)
class LabelCount:
    """Members carrying one label: from ground truth (a list or the Mirai fingerprint) or inferred by kNN."""

    ground_truth: int = 0
    inferred: int = 0

    @property
    def total(self) -> int:
        return self.ground_truth + self.inferred


@dataclass(frozen=True, slots=True)
class ClusterRow:
    """One cluster as the inspection table shows it.

    ``ports`` counts distinct destination ports among the members' remembered
    ports (the history keeps the busiest few per sender, so it is a lower
    bound for very diverse senders). ``top_ports`` are ``(port, packets)``
    over the remembered windows; ``label_mix`` maps each label to its counts
    and leaves out members without a label, which ``unlabelled`` counts.
    """

    cluster_id: str
    senders: int
    ports: int
    silhouette: float | None
    top_ports: tuple[tuple[int, int], ...]
    top_services: tuple[tuple[str, int], ...]
    subnets_24: int
    largest_subnet_24: tuple[str, int] | None
    label_mix: Mapping[str, LabelCount]
    unlabelled: int
    mirai_senders: int
    packets: int
    active_windows: int
    windows: int
    window_s: int | None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the row as JSON-ready built-in types."""
        return {
            "cluster_id": self.cluster_id,
            "senders": self.senders,
            "ports": self.ports,
            "silhouette": self.silhouette,
            "top_ports": [list(pair) for pair in self.top_ports],
            "top_services": [list(pair) for pair in self.top_services],
            "subnets_24": self.subnets_24,
            "largest_subnet_24": list(self.largest_subnet_24) if self.largest_subnet_24 else None,
            "label_mix": {
                label: {"ground_truth": count.ground_truth, "inferred": count.inferred}
                for label, count in self.label_mix.items()
            },
            "unlabelled": self.unlabelled,
            "mirai_senders": self.mirai_senders,
            "packets": self.packets,
            "active_windows": self.active_windows,
            "windows": self.windows,
            "window_s": self.window_s,
            "description": self.description,
        }


@dataclass(frozen=True)
class EvaluationResult:
    """The leave-one-out report, or the reason it could not be computed."""

    report: EvaluationReport | None
    note: str
    ground_truth_counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "ground_truth_counts": self.ground_truth_counts,
            "report": None if self.report is None else self.report.to_dict(),
        }


# -- cluster rows --------------------------------------------------------------


def cluster_rows(state: AnalystState, top_count: int = 5) -> list[ClusterRow]:
    """Build one row per cluster of the last clustering run, largest first (ties by cluster id)."""
    members: dict[str, list[str]] = {}
    silhouettes: dict[str, list[float]] = {}
    for sender, (cluster_id, silhouette) in state.journal.sender_cluster.items():
        members.setdefault(cluster_id, []).append(sender)
        if silhouette is not None:
            silhouettes.setdefault(cluster_id, []).append(silhouette)
    rows = [
        cluster_row(state, cluster_id, sorted(senders), silhouettes.get(cluster_id, []), top_count)
        for cluster_id, senders in members.items()
    ]
    rows.sort(key=lambda row: (-row.senders, row.cluster_id))
    return rows


def cluster_row(
    state: AnalystState, cluster_id: str, members: Sequence[str], silhouettes: Sequence[float], top_count: int = 5
) -> ClusterRow:
    """Build the inspection row of one cluster from its members."""
    history = state.history
    ports: Counter[int] = Counter()
    services: Counter[str] = Counter()
    packets = mirai_senders = 0
    for sender in members:
        summary = history.get(sender)
        if summary is None:
            continue
        ports.update(summary.ports)
        services.update(summary.services)
        packets += summary.packets
        mirai_senders += summary.mirai_packets > 0

    subnets = Counter(subnet_of(sender, 24) for sender in members)
    subnets.pop(NOT_AN_ADDRESS, None)
    largest = _top(subnets, 1)
    label_mix, unlabelled = label_mix_of(state, members)
    active, windows, window_s = _activity_span(history, members)
    row = ClusterRow(
        cluster_id=cluster_id,
        senders=len(members),
        ports=len(ports),
        silhouette=round(float(np.mean(silhouettes)), 6) if silhouettes else None,
        top_ports=_top(ports, top_count),
        top_services=_top(services, top_count),
        subnets_24=len(subnets),
        largest_subnet_24=largest[0] if largest else None,
        label_mix=label_mix,
        unlabelled=unlabelled,
        mirai_senders=mirai_senders,
        packets=packets,
        active_windows=active,
        windows=windows,
        window_s=window_s,
    )
    return _with_description(row, sum(ports.values()))


def label_mix_of(state: AnalystState, members: Sequence[str]) -> tuple[dict[str, LabelCount], int]:
    """Count members per label, split into ground truth and kNN-inferred, and count the unlabelled."""
    ground_truth: Counter[str] = Counter()
    inferred: Counter[str] = Counter()
    unlabelled = 0
    for sender in members:
        view = state.labels.get(sender)
        if view is None or view.label is None:
            unlabelled += 1
        elif view.source == INFERRED_SOURCE:
            inferred[view.label] += 1
        else:
            ground_truth[view.label] += 1
    totals = ground_truth + inferred
    ordered = sorted(totals, key=lambda label: (-totals[label], label))
    return {label: LabelCount(ground_truth[label], inferred[label]) for label in ordered}, unlabelled


def _activity_span(history: SenderHistory, members: Sequence[str]) -> tuple[int, int, int | None]:
    # Windows in which at least one member sent, out of the remembered ones.
    spans, matrix = history.activity_matrix(members)
    active = int(np.count_nonzero(matrix.sum(axis=0))) if matrix.size else 0
    lengths = {span.end_ns - span.start_ns for span in spans}
    window_s = lengths.pop() // 1_000_000_000 if len(lengths) == 1 else None
    return active, len(spans), window_s


def _top(counter: Counter[Any], count: int) -> tuple[tuple[Any, int], ...]:
    # Ties go to the smaller key so that two reports of one state agree.
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:count])


# -- descriptions --------------------------------------------------------------


def _with_description(row: ClusterRow, port_packets: int) -> ClusterRow:
    return replace(row, description=describe(row, port_packets))


def describe(row: ClusterRow, port_packets: int) -> str:
    """Write a one-line description such as '41 senders from 3 /24s, mostly unknown, ports 23 (70 %), 2323 (20 %)'.

    ``port_packets`` is the members' packets over all remembered ports, the
    denominator of the port shares.
    """
    parts = [f"{row.senders} sender{'s' if row.senders != 1 else ''} from {row.subnets_24} /24{'s' if row.subnets_24 != 1 else ''}"]
    parts.append(_label_phrase(row))
    if row.top_ports and port_packets > 0:
        shares = [f"{port} ({format_share(packets, port_packets)})" for port, packets in row.top_ports[:3]]
        parts.append("ports " + ", ".join(shares))
    if row.top_services:
        parts.append("services " + "/".join(service for service, _ in row.top_services[:3]))
    if row.mirai_senders:
        parts.append(f"Mirai fingerprint on {format_share(row.mirai_senders, row.senders)} of senders")
    if row.windows:
        length = f" of {format_duration(row.window_s)}" if row.window_s else ""
        parts.append(f"active in {row.active_windows} of {row.windows} windows{length}")
    return ", ".join(parts)


def _label_phrase(row: ClusterRow) -> str:
    counts = {label: count.total for label, count in row.label_mix.items()}
    if row.unlabelled:
        counts[UNLABELLED] = row.unlabelled
    if not counts:
        return UNLABELLED
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    label, count = ranked[0]
    if count == row.senders:
        return f"all {label}"
    if count * 2 > row.senders:
        return f"mostly {label} ({format_share(count, row.senders)})"
    return "mixed: " + ", ".join(f"{name} {format_share(value, row.senders)}" for name, value in ranked[:3])


def format_share(part: int, whole: int) -> str:
    """Format ``part / whole`` as a whole percentage that never rounds a part to 0% or 100%."""
    share = round(100 * part / whole) if whole else 0
    if part and share == 0:
        return "<1%"
    if part < whole and share == 100:
        return ">99%"
    return f"{share}%"


def format_duration(seconds: int | None) -> str:
    """Format a window length such as 3600 as '1 h' and 86400 as '1 d'."""
    if seconds is None:
        return "?"
    for unit_s, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= unit_s and seconds % unit_s == 0:
            return f"{seconds // unit_s} {unit}"
    return f"{seconds} s"


# -- label evaluation ----------------------------------------------------------


def ground_truth_labels(state: AnalystState, senders: Sequence[str]) -> dict[str, str]:
    """Labels from lists and the Mirai fingerprint (not kNN) of the given senders."""
    labels = {}
    for sender in senders:
        view = state.labels.get(sender)
        if view is not None and view.label is not None and view.source != INFERRED_SOURCE:
            labels[sender] = view.label
    return labels


def evaluation_table(
    state: AnalystState, labeller: KnnLabeller, max_unknown: int | None = 5000, seed: int = 0
) -> EvaluationResult:
    """Evaluate kNN labelling leave-one-out on the state's vectors and ground-truth labels.

    ``max_unknown`` caps the unlabelled senders sampled as queries in the
    setting with an ``unknown`` class (seeded by ``seed``), because each
    query searches every sender.
    """
    senders, vectors = state.embedding.vectors(state.embedding.keys())
    labels = ground_truth_labels(state, senders)
    counts = dict(sorted(Counter(labels.values()).items(), key=lambda item: (-item[1], item[0])))
    if len(set(labels.values())) < 2:
        note = (f"{len(labels)} of {len(senders)} embedded senders carry a ground-truth label, in "
                f"{len(counts)} class(es); the evaluation needs labelled senders of at least 2 classes")
        return EvaluationResult(None, note, counts)
    try:
        report = leave_one_out(senders, vectors, labels, labeller, include_unknown=True,
                               max_unknown=max_unknown, seed=seed)
    except InputError as error:
        logger.warning("label evaluation skipped: %s", error)
        return EvaluationResult(None, f"evaluation failed: {error}", counts)
    note = f"{len(labels)} of {len(senders)} embedded senders carry a ground-truth label"
    return EvaluationResult(report, note, counts)
