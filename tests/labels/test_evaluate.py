"""Leave-one-out evaluation on synthetic clusters with known labels, and the score tables."""

from __future__ import annotations

import pytest

from darkvec_stream.errors import InputError
from darkvec_stream.labels.evaluate import ABSTAIN, leave_one_out, score_table, threshold_sweep
from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.labels.synthetic import make_embedding

OPEN = KnnLabeller(k=7, min_similarity=-1.0, min_margin=0.0)


def test_separated_clusters_score_near_one() -> None:
    data = make_embedding(classes=6, largest_class=80, smallest_class=15, seed=3)
    report = leave_one_out(data.senders, data.vectors, data.ground_truth, OPEN, include_unknown=False)
    assert report.without_unknown.macro_f1 > 0.98
    assert report.without_unknown.accuracy > 0.98
    assert report.labelled == len(data.ground_truth)
    assert [score.label for score in report.without_unknown.classes] == [f"class{i:02d}" for i in range(6)]
    assert sum(score.support for score in report.without_unknown.classes) == report.labelled
    assert report.with_unknown is None


def test_macro_f1_drops_as_clusters_overlap() -> None:
    scores = []
    for overlap in (0.0, 0.6, 0.75, 0.9):
        data = make_embedding(classes=6, largest_class=80, smallest_class=15, overlap=overlap, seed=4)
        report = leave_one_out(data.senders, data.vectors, data.ground_truth, OPEN, include_unknown=False)
        scores.append(report.without_unknown.macro_f1)
    assert scores[0] > 0.98
    assert scores[0] > scores[1] > scores[2] > scores[3]
    assert scores[3] < 0.5


def test_unknown_class_and_abstain() -> None:
    data = make_embedding(
        classes=4, largest_class=60, smallest_class=20, labelled_share=0.7,
        unknown_groups=3, unknown_group_size=40, noise_senders=100, seed=5,
    )
    strict = KnnLabeller(k=7, min_similarity=0.6, min_margin=0.3)
    report = leave_one_out(data.senders, data.vectors, data.ground_truth, strict)
    table = report.with_unknown
    assert table is not None
    assert table.queries == len(data.senders)
    unknown = [score for score in table.classes if score.label == "unknown"][0]
    assert unknown.support == len(data.senders) - len(data.ground_truth)
    # Unlabelled groups and noise are far from every labelled class: abstaining puts them in "unknown".
    assert unknown.recall > 0.8
    assert 0.0 < table.abstain_rate < 1.0
    # Without thresholds only senders with no labelled sender among their candidates abstain.
    open_table = leave_one_out(data.senders, data.vectors, data.ground_truth, OPEN).with_unknown
    assert open_table is not None
    assert open_table.abstained < table.abstained
    open_unknown = [score for score in open_table.classes if score.label == "unknown"][0]
    assert open_unknown.recall < unknown.recall
    assert report.without_unknown_decided.precision_decided >= report.without_unknown.accuracy


def test_max_unknown_samples_queries() -> None:
    data = make_embedding(classes=3, largest_class=30, smallest_class=20, noise_senders=200, seed=6)
    report = leave_one_out(data.senders, data.vectors, data.ground_truth, OPEN, max_unknown=50)
    assert report.with_unknown is not None
    assert report.with_unknown.queries == len(data.ground_truth) + 50


def test_compat_vote_is_worse_with_unknown_neighbours() -> None:
    data = make_embedding(
        classes=5, largest_class=60, smallest_class=20, labelled_share=0.3,
        noise_senders=50, spread=0.2, overlap=0.5, seed=7,
    )
    majority = leave_one_out(data.senders, data.vectors, data.ground_truth, KnnLabeller(k=7, min_similarity=-1, min_margin=0))
    compat = leave_one_out(data.senders, data.vectors, data.ground_truth, KnnLabeller(k=7, vote="darkvec-compat"))
    assert majority.without_unknown.macro_f1 > compat.without_unknown.macro_f1
    assert compat.settings["vote"] == "darkvec-compat"


def test_score_table_by_hand() -> None:
    truth = ["a", "a", "a", "b", "b"]
    predicted = ["a", "a", ABSTAIN, "a", "b"]
    table = score_table("t", truth, predicted, ["a", "b"])
    scores = {score.label: score for score in table.classes}
    assert scores["a"].precision == pytest.approx(2 / 3)
    assert scores["a"].recall == pytest.approx(2 / 3)
    assert scores["b"].precision == pytest.approx(1.0)
    assert scores["b"].recall == pytest.approx(0.5)
    assert scores["b"].f1 == pytest.approx(2 / 3)
    assert table.accuracy == pytest.approx(3 / 5)
    assert table.abstained == 1
    assert table.abstain_rate == pytest.approx(0.2)
    assert table.precision_decided == pytest.approx(3 / 4)
    assert table.macro_f1 == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_report_renders_and_serialises() -> None:
    data = make_embedding(classes=3, largest_class=20, smallest_class=10, noise_senders=10, seed=8)
    report = leave_one_out(data.senders, data.vectors, data.ground_truth, KnnLabeller())
    text = report.to_text()
    assert "Without unknown" in text
    assert "With unknown" in text
    assert "class00" in text
    document = report.to_dict()
    assert document["settings"]["k"] == 7
    assert document["with_unknown"]["abstain_rate"] == report.with_unknown.abstain_rate  # type: ignore[union-attr]


def test_sweep_coverage_falls_as_thresholds_rise() -> None:
    data = make_embedding(classes=4, largest_class=50, smallest_class=20, spread=0.22, overlap=0.5, seed=9)
    points = threshold_sweep(data.senders, data.vectors, data.ground_truth, KnnLabeller(), [0.0, 0.5, 0.7], [0.0, 0.5])
    assert len(points) == 6
    by_pair = {(p.min_similarity, p.min_margin): p for p in points}
    assert by_pair[(0.0, 0.0)].coverage == 1.0
    assert by_pair[(0.7, 0.5)].coverage <= by_pair[(0.5, 0.5)].coverage <= by_pair[(0.0, 0.5)].coverage
    assert by_pair[(0.0, 0.5)].coverage <= by_pair[(0.0, 0.0)].coverage
    assert by_pair[(0.0, 0.5)].precision >= by_pair[(0.0, 0.0)].precision


def test_needs_two_labelled_senders() -> None:
    data = make_embedding(classes=1, largest_class=5, smallest_class=5, seed=1)
    with pytest.raises(InputError, match="at least 2"):
        leave_one_out(data.senders, data.vectors, {data.senders[0]: "x"}, OPEN)
    with pytest.raises(InputError, match="duplicates"):
        leave_one_out(data.senders + data.senders[:1], data.vectors[list(range(5)) + [0]], data.ground_truth, OPEN)
