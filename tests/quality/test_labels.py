"""Lower bounds on leave-one-out label quality of the streaming model, scored against the simulator's truth."""

from __future__ import annotations

import numpy as np

from bench.baselines import TrainedVectors
from bench.quality_eval import labellers, score_labels
from bench.quality_pipeline import PipelineRun
from darkvec_stream.simulate import Truth


def _votes(run: PipelineRun) -> dict:
    knn = run.settings.knn
    return labellers(knn.k, knn.min_similarity, knn.min_margin)


def test_majority_vote_macro_f1_bound(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, run = simulated
    senders, vectors = last_day
    scores = score_labels("majority", senders, vectors, truth, _votes(run)["majority (no abstain)"])
    assert scores.classes >= 9, "every scanner organisation and mirai should be present"
    assert scores.queries >= 100
    assert scores.macro_f1 >= 0.9


def test_majority_beats_compat_vote(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    # The compat vote takes the alphabetically first label among the
    # neighbours: one scanner neighbour among Mirai-like ones wins.
    truth, run = simulated
    senders, vectors = last_day
    votes = _votes(run)
    majority = score_labels("majority", senders, vectors, truth, votes["majority (no abstain)"])
    compat = score_labels("compat", senders, vectors, truth, votes["darkvec-compat"])
    assert majority.macro_f1 >= compat.macro_f1 + 0.2
    assert majority.macro_f1_unknown > compat.macro_f1_unknown


def test_abstain_keeps_precision(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, run = simulated
    senders, vectors = last_day
    votes = _votes(run)
    abstaining = score_labels("abstain", senders, vectors, truth, votes["majority (abstain)"])
    plain = score_labels("plain", senders, vectors, truth, votes["majority (no abstain)"])
    assert abstaining.precision_decided >= plain.precision_decided
    assert abstaining.precision_decided_unknown >= plain.precision_decided_unknown
    assert abstaining.coverage <= plain.coverage


def test_streaming_close_to_batch(simulated: tuple[Truth, PipelineRun], last_day: tuple,
                                  batch_vectors: TrainedVectors) -> None:
    truth, run = simulated
    senders, vectors = last_day
    vote = _votes(run)["majority (no abstain)"]
    streaming = score_labels("streaming", senders, vectors, truth, vote)
    batch = score_labels("batch", senders, batch_vectors.select(senders), truth, vote)
    assert streaming.macro_f1 >= batch.macro_f1 - 0.05
    assert np.isfinite(batch.macro_f1)
