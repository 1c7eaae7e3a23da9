"""Lower bounds on cluster quality of the configured clustering, beside the published recipe."""

from __future__ import annotations

import pytest

from bench.bench_quality import configured_clusterer
from bench.quality_eval import score_clustering
from bench.quality_pipeline import PipelineRun
from darkvec_stream.clusters.clustering import SenderClusterer
from darkvec_stream.simulate import Truth


def test_default_clustering_ari_bound(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, run = simulated
    senders, vectors = last_day
    default = score_clustering("default", configured_clusterer(run.settings), senders, vectors, truth)
    assert default.clusters >= 3
    assert default.ari_group_coordinated >= 0.7


def test_paper_recipe_ari_bound(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, _ = simulated
    senders, vectors = last_day
    paper = score_clustering("paper", SenderClusterer(method="darkvec-paper"), senders, vectors, truth)
    assert paper.noise == 0, "the published recipe keeps every community"
    assert paper.ari_group_coordinated >= 0.7


# NOTE: on this case the configured Leiden clustering (k=10, resolution 1,
# min_similarity 0.3) merges most scanner organisations into one cluster and
# scores below the published k'=3 Louvain recipe (coordinated ARI 0.91
# against 0.96 when measured). Flip this test to a plain one once the
# default clustering splits the organisations.
@pytest.mark.xfail(strict=True, reason="configured clustering merges scanner organisations")
def test_default_beats_paper_on_coordinated(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, run = simulated
    senders, vectors = last_day
    default = score_clustering("default", configured_clusterer(run.settings), senders, vectors, truth)
    paper = score_clustering("paper", SenderClusterer(method="darkvec-paper"), senders, vectors, truth)
    assert default.ari_group_coordinated > paper.ari_group_coordinated
