"""Lower bounds on cluster quality of the configured clustering, beside the published recipe."""

from __future__ import annotations

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


def test_default_beats_paper_on_coordinated(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    # Measured: coordinated ARI 0.974 against 0.973 and ARI over all senders
    # 0.868 against 0.802. Without the silhouette-checked split the default
    # merged the 6-sender scanner organisations (0.909 coordinated).
    truth, run = simulated
    senders, vectors = last_day
    default = score_clustering("default", configured_clusterer(run.settings), senders, vectors, truth)
    paper = score_clustering("paper", SenderClusterer(method="darkvec-paper"), senders, vectors, truth)
    assert default.ari_group_coordinated > paper.ari_group_coordinated
    assert default.ari_group > paper.ari_group + 0.05


def test_split_separates_scanner_organisations(simulated: tuple[Truth, PipelineRun], last_day: tuple) -> None:
    truth, run = simulated
    senders, vectors = last_day
    split = score_clustering("default", configured_clusterer(run.settings), senders, vectors, truth)
    settings = run.settings.clusters
    unsplit_clusterer = SenderClusterer(
        method=settings.method, k=settings.k, resolution=settings.resolution,  # type: ignore[arg-type]
        min_similarity=settings.min_similarity, min_cluster_size=settings.min_cluster_size,
        seed=settings.seed, split_min_gain=None)
    unsplit = score_clustering("unsplit", unsplit_clusterer, senders, vectors, truth)
    assert split.clusters > unsplit.clusters
    assert split.ari_group_coordinated > unsplit.ari_group_coordinated + 0.03
    largest_merge = max((len(groups) for groups in split.merged.values()), default=0)
    assert largest_merge <= 3
