"""Leave-one-out evaluation of kNN labelling, as in the DarkVec paper's table.

Each labelled sender is classified from its neighbours with its own label
hidden, and scikit-learn computes per-class precision, recall, F1 and
support. Two settings: without an ``unknown`` class (labelled senders only,
searched among labelled senders) and with one (unlabelled senders join as
class ``unknown``, and an abstention predicts ``unknown``). It evaluates
given vectors; training them is the embedding stage's job.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from darkvec_stream.errors import InputError
from darkvec_stream.labels.knn import KnnLabeller, LabelDecision
from darkvec_stream.labels.neighbours import ExactNeighbourSearch

logger = logging.getLogger(__name__)

UNKNOWN_CLASS = "unknown"
ABSTAIN = "(abstain)"


class StaticLabels:
    """A fixed ``{sender: label}`` mapping behind the ``label_of`` interface."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._labels = labels

    def label_of(self, sender: str) -> str | None:
        return self._labels.get(sender)


@dataclass(frozen=True)
class ClassScore:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ScoreTable:
    """One classification report: per-class scores and the summary figures.

    ``accuracy`` counts an abstention as a miss. ``precision_decided`` is the
    share of correct labels among the queries that got one.
    """

    name: str
    classes: tuple[ClassScore, ...]
    accuracy: float
    macro_f1: float
    weighted_f1: float
    queries: int
    abstained: int
    precision_decided: float

    @property
    def abstain_rate(self) -> float:
        """Share of queries that got no label."""
        return self.abstained / self.queries if self.queries else 0.0


@dataclass(frozen=True)
class EvaluationReport:
    """Leave-one-out results in every setting, with the labeller's settings."""

    settings: dict[str, Any]
    senders: int
    labelled: int
    without_unknown: ScoreTable
    without_unknown_decided: ScoreTable
    with_unknown: ScoreTable | None
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        document = asdict(self)
        for key in ("without_unknown", "without_unknown_decided", "with_unknown"):
            table = getattr(self, key)
            if table is not None:
                document[key]["abstain_rate"] = table.abstain_rate
        return document

    def to_text(self) -> str:
        """Render the report as aligned text tables."""
        settings = ", ".join(f"{key}={value}" for key, value in self.settings.items())
        lines = [f"leave-one-out evaluation: {settings}", f"senders {self.senders:,}; labelled {self.labelled:,}", ""]
        titles = {
            "without_unknown": "Without unknown (labelled senders only; an abstention counts as a miss)",
            "without_unknown_decided": "Without unknown, decided queries only (abstentions removed)",
            "with_unknown": "With unknown (unlabelled senders are class 'unknown'; an abstention predicts it)",
        }
        for key, title in titles.items():
            table = getattr(self, key)
            if table is not None:
                lines.extend(_render_table(title, table))
        if self.reasons:
            lines.append("decisions without unknown: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())))
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SweepPoint:
    """Precision and coverage of the labelled senders at one pair of thresholds."""

    min_similarity: float
    min_margin: float
    coverage: float
    precision: float
    accuracy: float
    macro_f1: float


def leave_one_out(
    senders: Sequence[str],
    vectors: np.ndarray,
    labels: Mapping[str, str],
    labeller: KnnLabeller,
    include_unknown: bool = True,
    max_unknown: int | None = None,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate ``labeller`` leave-one-out over the labelled senders.

    ``labels`` maps senders to ground-truth labels; senders absent from it are
    unlabelled. ``max_unknown`` caps how many unlabelled senders join the
    with-unknown setting as queries (a seeded random sample), because each
    query costs a search over all senders.
    """
    matrix = _check_inputs(senders, vectors)
    labelled_rows = [row for row, sender in enumerate(senders) if sender in labels]
    if len(labelled_rows) < 2:
        raise InputError(
            f"only {len(labelled_rows)} of {len(senders)} senders carry a label; leave-one-out needs at least 2. "
            "Check that the label sources cover these senders"
        )
    lookup = StaticLabels(labels)
    labelled_senders = [senders[row] for row in labelled_rows]
    labelled_vectors = matrix[labelled_rows]
    classes = sorted({labels[sender] for sender in labelled_senders})

    # 1. Without unknown: the labelled senders are both the queries and the neighbours.
    search = ExactNeighbourSearch(labelled_senders, labelled_vectors)
    decisions = labeller.label(labelled_senders, labelled_vectors, search, lookup)
    truth = [labels[sender] for sender in labelled_senders]
    predicted = [decision.label or ABSTAIN for decision in decisions]
    without = score_table("without_unknown", truth, predicted, classes)
    decided_rows = [row for row, decision in enumerate(decisions) if not decision.abstained]
    decided = score_table(
        "without_unknown_decided",
        [truth[row] for row in decided_rows],
        [predicted[row] for row in decided_rows],
        classes,
    )
    reasons = _count_reasons(decisions)

    # 2. With unknown: every sender is a neighbour; unlabelled queries are class "unknown".
    with_unknown = None
    if include_unknown:
        with_unknown = _with_unknown(senders, matrix, labels, labeller, labelled_rows, classes, max_unknown, seed)

    settings = {
        "k": labeller.k,
        "vote": labeller.vote,
        "weighting": labeller.weighting,
        "min_similarity": labeller.min_similarity,
        "min_margin": labeller.min_margin,
    }
    return EvaluationReport(settings, len(senders), len(labelled_rows), without, decided, with_unknown, reasons)


def threshold_sweep(
    senders: Sequence[str],
    vectors: np.ndarray,
    labels: Mapping[str, str],
    labeller: KnnLabeller,
    min_similarities: Sequence[float],
    min_margins: Sequence[float],
) -> list[SweepPoint]:
    """Measure precision and coverage leave-one-out for each pair of thresholds.

    Neighbours are searched once; only the vote is repeated per pair.
    """
    matrix = _check_inputs(senders, vectors)
    rows = [row for row, sender in enumerate(senders) if sender in labels]
    queries = [senders[row] for row in rows]
    search = ExactNeighbourSearch(queries, matrix[rows])
    neighbour_lists = search.search(matrix[rows], labeller.search_k)
    lookup = StaticLabels(labels)
    truth = [labels[sender] for sender in queries]
    classes = sorted(set(truth))
    points = []
    for min_similarity in min_similarities:
        for min_margin in min_margins:
            variant = replace_thresholds(labeller, min_similarity, min_margin)
            decisions = [variant.decide(sender, found, lookup) for sender, found in zip(queries, neighbour_lists)]
            predicted = [decision.label or ABSTAIN for decision in decisions]
            table = score_table("sweep", truth, predicted, classes)
            points.append(
                SweepPoint(min_similarity, min_margin, 1.0 - table.abstain_rate, table.precision_decided, table.accuracy, table.macro_f1)
            )
    return points


def replace_thresholds(labeller: KnnLabeller, min_similarity: float, min_margin: float) -> KnnLabeller:
    """Return a copy of ``labeller`` with other abstain thresholds."""
    return KnnLabeller(
        k=labeller.k,
        vote=labeller.vote,
        min_similarity=min_similarity,
        min_margin=min_margin,
        weighting=labeller.weighting,
        candidate_factor=labeller.candidate_factor,
    )


def score_table(name: str, truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> ScoreTable:
    """Compute per-class and summary scores; ``ABSTAIN`` predictions are misses."""
    queries = len(truth)
    abstained = sum(1 for label in predicted if label == ABSTAIN)
    if not queries:
        return ScoreTable(name, (), 0.0, 0.0, 0.0, 0, 0, 0.0)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(classes), zero_division=0
    )
    scores = tuple(
        ClassScore(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(classes, precision, recall, f1, support)
    )
    correct = sum(1 for expected, got in zip(truth, predicted) if expected == got)
    decided = queries - abstained
    total_support = int(np.sum(support))
    weighted = float(np.dot(f1, support) / total_support) if total_support else 0.0
    return ScoreTable(
        name=name,
        classes=scores,
        accuracy=correct / queries,
        macro_f1=float(np.mean(f1)) if len(classes) else 0.0,
        weighted_f1=weighted,
        queries=queries,
        abstained=abstained,
        precision_decided=correct / decided if decided else 0.0,
    )


def _check_inputs(senders: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(senders):
        raise InputError(f"{len(senders)} senders but vectors of shape {matrix.shape}; they must pair one to one")
    if len(set(senders)) != len(senders):
        raise InputError("sender list has duplicates; each sender must have exactly one vector")
    return matrix


def _with_unknown(
    senders: Sequence[str],
    matrix: np.ndarray,
    labels: Mapping[str, str],
    labeller: KnnLabeller,
    labelled_rows: list[int],
    classes: list[str],
    max_unknown: int | None,
    seed: int,
) -> ScoreTable:
    unlabelled_rows = [row for row, sender in enumerate(senders) if sender not in labels]
    if max_unknown is not None and len(unlabelled_rows) > max_unknown:
        chosen = np.random.default_rng(seed).choice(len(unlabelled_rows), size=max_unknown, replace=False)
        unlabelled_rows = [unlabelled_rows[index] for index in sorted(chosen.tolist())]
    rows = labelled_rows + unlabelled_rows
    queries = [senders[row] for row in rows]
    search = ExactNeighbourSearch(senders, matrix)
    decisions = labeller.label(queries, matrix[rows], search, StaticLabels(labels))
    truth = [labels.get(sender, UNKNOWN_CLASS) for sender in queries]
    predicted = [decision.label or UNKNOWN_CLASS for decision in decisions]
    table = score_table("with_unknown", truth, predicted, classes + [UNKNOWN_CLASS])
    # In this setting an abstention is the prediction "unknown", so count it apart.
    decided = [(expected, got) for expected, got, decision in zip(truth, predicted, decisions) if not decision.abstained]
    correct = sum(1 for expected, got in decided if expected == got)
    return replace(
        table,
        abstained=len(decisions) - len(decided),
        precision_decided=correct / len(decided) if decided else 0.0,
    )


def _count_reasons(decisions: Sequence[LabelDecision]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.reason] = counts.get(decision.reason, 0) + 1
    return counts


def _render_table(title: str, table: ScoreTable) -> list[str]:
    width = max([len("class")] + [len(score.label) for score in table.classes])
    lines = [title, f"{'class':<{width}}  precision  recall     f1  support"]
    for score in table.classes:
        lines.append(
            f"{score.label:<{width}}  {score.precision:9.3f}  {score.recall:6.3f}  {score.f1:5.3f}  {score.support:7d}"
        )
    lines.append(
        f"accuracy {table.accuracy:.3f}; macro F1 {table.macro_f1:.3f}; weighted F1 {table.weighted_f1:.3f}; "
        f"queries {table.queries:,}; abstain rate {table.abstain_rate:.3f}; "
        f"precision when labelling {table.precision_decided:.3f}"
    )
    lines.append("")
    return lines

