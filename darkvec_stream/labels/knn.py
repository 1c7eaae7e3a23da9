"""kNN labelling: a sender takes the label its nearest labelled neighbours agree on.

The default vote is a majority over the ``k`` nearest labelled neighbours that
abstains, with a stated reason, when the neighbours are too far or disagree.
``darkvec-compat`` reproduces the vote of the published DarkVec code, biased
towards alphabetically early labels, for comparison only. Finding neighbours
is the index's job; this module only reads the lists it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.labels.neighbours import NeighbourSearch, run_search

logger = logging.getLogger(__name__)

VOTES = ("majority", "darkvec-compat")
WEIGHTINGS = ("uniform", "similarity")

REASON_VOTED = "voted"
REASON_LOW_SIMILARITY = "low_similarity"
REASON_LOW_MARGIN = "low_margin"
REASON_LOW_SUPPORT = "low_support"
REASON_NO_LABELLED_NEIGHBOURS = "no_labelled_neighbours"
REASON_COMPAT_TIE = "compat_tie"
REASON_COMPAT_UNKNOWN = "compat_unknown"

# The label the published code gives unlabelled neighbours.
COMPAT_UNKNOWN = "unknown"


class LabelLookup(Protocol):
    """Anything that returns a sender's ground-truth label (a ``LabelBook``)."""

    def label_of(self, sender: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LabelDecision:
    """The label given to one sender, or an explained abstention.

    ``confidence`` is the winning label's share of the vote weight, also
    reported when the labeller abstains. ``neighbours`` lists the neighbours
    examined, most similar first, as ``(sender, similarity, label or None)``.
    """

    sender: str
    label: str | None
    confidence: float
    abstained: bool
    reason: str
    neighbours: tuple[tuple[str, float, str | None], ...]


class KnnLabeller:
    """Label senders from their nearest neighbours' ground truth.

    ``majority`` vote: the voters are the first ``k`` labelled senders among
    the ``k * candidate_factor`` nearest neighbours, the query itself
    excluded. With ``weighting="uniform"`` each voter counts 1; with
    ``"similarity"`` it counts its cosine similarity (negatives count 0).
    The labeller abstains with reason ``no_labelled_neighbours`` when no
    voter is found, ``low_similarity`` when the nearest voter's similarity is
    below ``min_similarity``, and ``low_margin`` when the winner's share of
    the vote minus the runner-up's share is below ``min_margin``, and
    ``low_support`` when fewer than ``min_support`` of the ``k`` nearest
    neighbours, labelled or not, carry the winning label. A tie at
    the top (margin 0) that passes ``min_margin=0`` goes to the label of the
    nearest voter.

    ``darkvec-compat`` vote: over the ``k`` nearest neighbours, unlabelled
    ones counted as ``unknown``, labels sorted alphabetically with their
    counts. A single label wins. If the first two sorted labels have equal
    counts, the result is "n.a." (reason ``compat_tie``). Otherwise the
    alphabetically first label wins whatever its count. An ``unknown``
    result becomes an abstention with reason ``compat_unknown``.

    >>> labeller = KnnLabeller(k=3, min_similarity=0.5, min_margin=0.2)
    >>> book = {"a": "censys", "b": "censys", "c": "shodan"}
    >>> class Book:
    ...     def label_of(self, sender): return book.get(sender)
    >>> decision = labeller.decide("q", [("a", 0.9), ("b", 0.8), ("c", 0.7)], Book())
    >>> decision.label, decision.reason
    ('censys', 'voted')
    """

    def __init__(
        self,
        k: int = 7,
        vote: str = "majority",
        min_similarity: float = 0.5,
        min_margin: float = 0.3,
        min_support: float = 0.0,
        weighting: str = "uniform",
        candidate_factor: int = 4,
    ) -> None:
        if k < 1:
            raise ConfigError(f"knn k {k} is invalid; use 1 or more neighbours")
        if vote not in VOTES:
            raise ConfigError(f"knn vote {vote!r} is invalid; use one of {', '.join(VOTES)}")
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"knn weighting {weighting!r} is invalid; use one of {', '.join(WEIGHTINGS)}")
        if not -1.0 <= min_similarity <= 1.0:
            raise ConfigError(f"knn min_similarity {min_similarity} is invalid; use a cosine between -1 and 1")
        if not 0.0 <= min_margin <= 1.0:
            raise ConfigError(f"knn min_margin {min_margin} is invalid; use a share between 0 and 1")
        if candidate_factor < 1:
            raise ConfigError(f"knn candidate_factor {candidate_factor} is invalid; use 1 or more")
        self.k = k
        self.vote = vote
        self.min_similarity = min_similarity
        self.min_margin = min_margin
        if not 0.0 <= min_support <= 1.0:
            raise ConfigError(f"knn min_support {min_support} is invalid; use a share between 0 and 1")
        self.min_support = min_support
        self.weighting = weighting
        self.candidate_factor = candidate_factor

    @property
    def search_k(self) -> int:
        """Neighbours requested from the index per query (the query itself included)."""
        if self.vote == "darkvec-compat":
            return self.k + 1
        return self.k * self.candidate_factor + 1

    def label(
        self,
        senders: Sequence[str],
        vectors: np.ndarray,
        search: NeighbourSearch,
        book: LabelLookup,
    ) -> list[LabelDecision]:
        """Search the neighbours of each sender's vector and decide its label."""
        if len(senders) != len(vectors):
            raise InputError(f"{len(senders)} senders but {len(vectors)} vectors; they must pair one to one")
        if not len(senders):
            return []
        neighbour_lists = run_search(search, np.asarray(vectors, dtype=np.float32), self.search_k)
        lookup = _CachedLookup(book)
        return [self.decide(sender, neighbours, lookup) for sender, neighbours in zip(senders, neighbour_lists)]

    def decide(self, sender: str, neighbours: Sequence[tuple[str, float]], book: LabelLookup) -> LabelDecision:
        """Decide one sender's label from its neighbour list (most similar first)."""
        if self.vote == "darkvec-compat":
            return self._decide_compat(sender, neighbours, book)
        return self._decide_majority(sender, neighbours, book)

    def _decide_majority(self, sender: str, neighbours: Sequence[tuple[str, float]], book: LabelLookup) -> LabelDecision:
        evidence: list[tuple[str, float, str | None]] = []
        scores: dict[str, float] = {}
        voters = 0
        best_similarity = -1.0
        for other, similarity in neighbours:
            if other == sender:
                continue
            label = book.label_of(other)
            evidence.append((other, float(similarity), label))
            if label is None:
                continue
            weight = 1.0 if self.weighting == "uniform" else max(float(similarity), 0.0)
            scores[label] = scores.get(label, 0.0) + weight
            best_similarity = max(best_similarity, float(similarity))
            voters += 1
            if voters == self.k:
                break
        if not voters:
            return LabelDecision(sender, None, 0.0, True, REASON_NO_LABELLED_NEIGHBOURS, tuple(evidence))

        # Dicts keep insertion order, so on equal scores the nearest voter's label ranks first.
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        total = sum(scores.values())
        top_score = ranked[0][1]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = top_score / total if total > 0 else 0.0
        margin = (top_score - runner_up) / total if total > 0 else 0.0
        if best_similarity < self.min_similarity:
            return LabelDecision(sender, None, confidence, True, REASON_LOW_SIMILARITY, tuple(evidence))
        if margin < self.min_margin or total <= 0:
            return LabelDecision(sender, None, confidence, True, REASON_LOW_MARGIN, tuple(evidence))
        if _support(evidence, ranked[0][0], self.k) < self.min_support:
            return LabelDecision(sender, None, confidence, True, REASON_LOW_SUPPORT, tuple(evidence))
        return LabelDecision(sender, ranked[0][0], confidence, False, REASON_VOTED, tuple(evidence))

    def _decide_compat(self, sender: str, neighbours: Sequence[tuple[str, float]], book: LabelLookup) -> LabelDecision:
        # NOTE: the published code drops the first returned neighbour because it
        # assumes that is the query. Here the query is dropped by identity,
        # which gives the same result whenever the query is in the index.
        evidence = []
        for other, similarity in neighbours:
            if other != sender:
                evidence.append((other, float(similarity), book.label_of(other)))
            if len(evidence) == self.k:
                break
        if not evidence:
            return LabelDecision(sender, None, 0.0, True, REASON_NO_LABELLED_NEIGHBOURS, ())
        names = np.array([label if label is not None else COMPAT_UNKNOWN for _, _, label in evidence])
        unique, counts = np.unique(names, return_counts=True)
        winner = str(unique[0])
        confidence = float(counts[0]) / len(names)
        if unique.shape[0] > 1 and counts[0] == counts[1]:
            return LabelDecision(sender, None, confidence, True, REASON_COMPAT_TIE, tuple(evidence))
        if winner == COMPAT_UNKNOWN:
            return LabelDecision(sender, None, confidence, True, REASON_COMPAT_UNKNOWN, tuple(evidence))
        return LabelDecision(sender, winner, confidence, False, REASON_VOTED, tuple(evidence))


def _support(evidence: Sequence[tuple[str, float, str | None]], label: str, k: int) -> float:
    """Share of the k nearest neighbours, labelled or not, that carry ``label``.

    Voters are the nearest *labelled* senders, so a sender inside an
    unlabelled group can be outvoted by a few labelled senders far down its
    neighbour list. Requiring the winner among the k nearest neighbours of
    any kind rejects those votes.
    """
    nearest = evidence[:k]
    return sum(1 for _, _, other in nearest if other == label) / k if nearest else 0.0


class _CachedLookup:
    """Memoise label lookups for one labelling batch: neighbours repeat a lot."""

    def __init__(self, book: LabelLookup) -> None:
        self._book = book
        self._cache: dict[str, str | None] = {}

    def label_of(self, sender: str) -> str | None:
        try:
            return self._cache[sender]
        except KeyError:
            label = self._book.label_of(sender)
            self._cache[sender] = label
            return label
