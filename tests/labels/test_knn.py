"""KnnLabeller: the majority vote, each abstain reason, and the pinned bias of the compat vote."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.index import SenderIndex
from darkvec_stream.labels.evaluate import StaticLabels
from darkvec_stream.labels.knn import (
    REASON_COMPAT_TIE,
    REASON_COMPAT_UNKNOWN,
    REASON_LOW_MARGIN,
    REASON_LOW_SIMILARITY,
    REASON_NO_LABELLED_NEIGHBOURS,
    REASON_VOTED,
    KnnLabeller,
)
from darkvec_stream.labels.neighbours import ExactNeighbourSearch

BOOK = StaticLabels(
    {
        "c1": "censys", "c2": "censys", "c3": "censys", "c4": "censys", "c5": "censys",
        "s1": "shodan", "s2": "shodan", "s3": "shodan",
        "m1": "mirai", "q": "rapid7",
    }
)


def neighbours(*pairs: tuple[str, float]) -> list[tuple[str, float]]:
    return list(pairs)


def test_majority_votes_and_reports_evidence() -> None:
    labeller = KnnLabeller(k=5, min_similarity=0.5, min_margin=0.2)
    decision = labeller.decide(
        "x", neighbours(("c1", 0.9), ("u1", 0.88), ("c2", 0.85), ("s1", 0.8), ("c3", 0.7), ("c4", 0.6)), BOOK
    )
    assert decision.label == "censys"
    assert decision.reason == REASON_VOTED
    assert not decision.abstained
    assert decision.confidence == pytest.approx(4 / 5)
    assert decision.neighbours[1] == ("u1", 0.88, None)
    assert [label for _, _, label in decision.neighbours].count("censys") == 4


def test_majority_excludes_the_sender_itself() -> None:
    labeller = KnnLabeller(k=3, min_similarity=0.0, min_margin=0.0)
    decision = labeller.decide("q", neighbours(("q", 1.0), ("s1", 0.9), ("s2", 0.8), ("c1", 0.7)), BOOK)
    assert decision.label == "shodan"
    assert "q" not in [sender for sender, _, _ in decision.neighbours]


def test_abstain_no_labelled_neighbours() -> None:
    labeller = KnnLabeller(k=3)
    decision = labeller.decide("x", neighbours(("u1", 0.99), ("u2", 0.98)), BOOK)
    assert decision.label is None
    assert decision.abstained
    assert decision.reason == REASON_NO_LABELLED_NEIGHBOURS
    assert labeller.decide("x", [], BOOK).reason == REASON_NO_LABELLED_NEIGHBOURS


def test_abstain_low_similarity() -> None:
    labeller = KnnLabeller(k=3, min_similarity=0.6, min_margin=0.0)
    decision = labeller.decide("x", neighbours(("c1", 0.55), ("c2", 0.5), ("c3", 0.4)), BOOK)
    assert decision.label is None
    assert decision.reason == REASON_LOW_SIMILARITY
    assert decision.confidence == 1.0


def test_abstain_low_margin() -> None:
    labeller = KnnLabeller(k=7, min_similarity=0.0, min_margin=0.2)
    four_three = neighbours(
        ("c1", 0.9), ("s1", 0.9), ("c2", 0.9), ("s2", 0.9), ("c3", 0.9), ("s3", 0.9), ("c4", 0.9)
    )
    decision = labeller.decide("x", four_three, BOOK)
    assert decision.label is None
    assert decision.reason == REASON_LOW_MARGIN
    assert decision.confidence == pytest.approx(4 / 7)
    five_two = neighbours(("c1", 0.9), ("s1", 0.9), ("c2", 0.9), ("s2", 0.9), ("c3", 0.9), ("c4", 0.9), ("c5", 0.9))
    assert labeller.decide("x", five_two, BOOK).label == "censys"


def test_top_tie_nearest_voter_wins() -> None:
    labeller = KnnLabeller(k=2, min_similarity=0.0, min_margin=0.0)
    assert labeller.decide("x", neighbours(("s1", 0.9), ("c1", 0.8)), BOOK).label == "shodan"
    assert labeller.decide("x", neighbours(("c1", 0.9), ("s1", 0.8)), BOOK).label == "censys"


def test_similarity_weighting_changes_the_winner() -> None:
    pairs = neighbours(("s1", 0.95), ("c1", 0.2), ("c2", 0.2))
    uniform = KnnLabeller(k=3, min_similarity=0.0, min_margin=0.0, weighting="uniform")
    weighted = KnnLabeller(k=3, min_similarity=0.0, min_margin=0.0, weighting="similarity")
    assert uniform.decide("x", pairs, BOOK).label == "censys"
    assert weighted.decide("x", pairs, BOOK).label == "shodan"


def test_majority_ignores_alphabetical_order() -> None:
    labeller = KnnLabeller(k=7, min_similarity=0.0, min_margin=0.0)
    pairs = neighbours(("m1", 0.99), *[(f"u{i}", 0.9) for i in range(6)], ("s1", 0.5), ("s2", 0.5))
    assert labeller.decide("x", pairs, BOOK).label == "shodan"


def test_compat_one_mirai_among_six_unknown_wins() -> None:
    compat = KnnLabeller(k=7, vote="darkvec-compat")
    pairs = neighbours(*[(f"u{i}", 0.95 - i / 100) for i in range(6)], ("m1", 0.5))
    decision = compat.decide("x", pairs, BOOK)
    assert decision.label == "mirai"
    assert decision.reason == REASON_VOTED
    assert decision.confidence == pytest.approx(1 / 7)


def test_compat_alphabetically_first_beats_majority() -> None:
    compat = KnnLabeller(k=7, vote="darkvec-compat")
    pairs = neighbours(("c1", 0.9), *[(f"s{i}", 0.8) for i in (1, 2, 3)], ("m1", 0.7), ("u1", 0.6), ("u2", 0.5))
    # Sorted labels: censys 1, mirai 1, shodan 3, unknown 2 -> the first two tie: "n.a.".
    assert compat.decide("x", pairs, BOOK).reason == REASON_COMPAT_TIE
    pairs = neighbours(("c1", 0.9), ("c2", 0.9), *[(f"s{i}", 0.8) for i in (1, 2, 3)], ("u1", 0.6), ("u2", 0.5))
    # censys 2, shodan 3, unknown 2: censys wins although shodan has the majority.
    assert compat.decide("x", pairs, BOOK).label == "censys"


def test_compat_unknown_result_abstains() -> None:
    compat = KnnLabeller(k=3, vote="darkvec-compat")
    decision = compat.decide("x", neighbours(("u1", 0.9), ("u2", 0.9), ("u3", 0.9)), BOOK)
    assert decision.label is None
    assert decision.reason == REASON_COMPAT_UNKNOWN


def test_compat_uses_k_nearest_only() -> None:
    compat = KnnLabeller(k=2, vote="darkvec-compat")
    decision = compat.decide("x", neighbours(("x", 1.0), ("s1", 0.9), ("s2", 0.8), ("c1", 0.7)), BOOK)
    assert decision.label == "shodan"
    assert len(decision.neighbours) == 2


def test_label_with_exact_search_and_faiss_index() -> None:
    senders = ["c1", "c2", "c3", "s1", "s2", "s3", "x", "y"]
    vectors = np.array(
        [[1, 0, 0], [0.95, 0.05, 0], [0.9, 0.1, 0], [0, 1, 0], [0.05, 0.95, 0], [0.1, 0.9, 0], [0.97, 0.03, 0], [0, 0, 1]],
        dtype=np.float32,
    )
    labeller = KnnLabeller(k=3, min_similarity=0.5, min_margin=0.3)
    exact = labeller.label(["x", "y"], vectors[[6, 7]], ExactNeighbourSearch(senders, vectors), BOOK)
    index = SenderIndex(dimension=3)
    index.upsert(senders, vectors)
    with_faiss = labeller.label(["x", "y"], vectors[[6, 7]], index, BOOK)
    for decisions in (exact, with_faiss):
        assert decisions[0].label == "censys"
        assert decisions[1].label is None
        assert decisions[1].reason == REASON_LOW_SIMILARITY
    assert [d.label for d in exact] == [d.label for d in with_faiss]


def test_label_accepts_a_search_function() -> None:
    def search(vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        return [[("s1", 0.9), ("s2", 0.8)] for _ in range(len(vectors))]

    decisions = KnnLabeller(k=2).label(["a", "b"], np.ones((2, 3)), search, BOOK)
    assert [decision.label for decision in decisions] == ["shodan", "shodan"]


def test_label_rejects_mismatched_inputs() -> None:
    with pytest.raises(InputError, match="pair one to one"):
        KnnLabeller().label(["a"], np.ones((2, 3)), ExactNeighbourSearch([], np.zeros((0, 3))), BOOK)
    with pytest.raises(InputError, match="search"):
        KnnLabeller().label(["a"], np.ones((1, 3)), object(), BOOK)  # type: ignore[arg-type]
    assert KnnLabeller().label([], np.zeros((0, 3)), ExactNeighbourSearch([], np.zeros((0, 3))), BOOK) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 0}, "k 0"),
        ({"vote": "plurality"}, "vote 'plurality'"),
        ({"weighting": "rank"}, "weighting"),
        ({"min_similarity": 1.5}, "min_similarity"),
        ({"min_margin": -0.1}, "min_margin"),
        ({"candidate_factor": 0}, "candidate_factor"),
    ],
)
def test_settings_validated(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KnnLabeller(**options)


labels = st.sampled_from(["censys", "shodan", "mirai", None])


@settings(max_examples=200, deadline=None)
@given(
    votes=st.lists(st.tuples(labels, st.floats(-1.0, 1.0)), max_size=20),
    k=st.integers(1, 9),
    min_similarity=st.floats(-1.0, 1.0),
    min_margin=st.floats(0.0, 1.0),
)
def test_majority_decision_invariants(
    votes: list, k: int, min_similarity: float, min_margin: float
) -> None:
    pairs = sorted(((f"n{i}", similarity) for i, (_, similarity) in enumerate(votes)), key=lambda pair: -pair[1])
    book = StaticLabels({f"n{i}": label for i, (label, _) in enumerate(votes) if label is not None})
    decision = KnnLabeller(k=k, min_similarity=min_similarity, min_margin=min_margin).decide("q", pairs, book)
    voters = [label for _, _, label in decision.neighbours if label is not None]
    assert len(voters) <= k
    assert 0.0 <= decision.confidence <= 1.0
    assert decision.abstained == (decision.label is None)
    if decision.label is not None:
        counts = {label: voters.count(label) for label in voters}
        assert counts[decision.label] == max(counts.values())
        assert decision.reason == REASON_VOTED


def test_low_support_abstains_inside_unlabelled_group():
    # Six unlabelled neighbours first, then one distant labelled sender: the
    # labelled voter alone would win every vote share.
    book = {"far": "censys"}

    class Book:
        def label_of(self, sender):
            return book.get(sender)

    neighbours = [(f"u{i}", 0.95 - i * 0.01) for i in range(6)] + [("far", 0.7)]
    labeller = KnnLabeller(k=7, min_similarity=0.5, min_margin=0.3, min_support=0.25)
    decision = labeller.decide("q", neighbours, Book())
    assert decision.label is None
    assert decision.reason == "low_support"
    assert KnnLabeller(k=7, min_similarity=0.5, min_margin=0.3).decide("q", neighbours, Book()).label == "censys"


def test_support_counts_only_the_k_nearest():
    book = {"a": "censys", "b": "censys"}

    class Book:
        def label_of(self, sender):
            return book.get(sender)

    neighbours = [("a", 0.9), ("u1", 0.89), ("b", 0.88), ("u2", 0.8)]
    decision = KnnLabeller(k=4, min_support=0.5).decide("q", neighbours, Book())
    assert decision.label == "censys"
    assert decision.reason == "voted"


def test_min_support_out_of_range_is_rejected():
    with pytest.raises(ConfigError, match="min_support"):
        KnnLabeller(min_support=1.5)
