"""Clustering quality, silhouettes and input checks on seeded synthetic vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.clusters import clustering
from darkvec_stream.clusters.clustering import NOISE, SenderClusterer, ivf_neighbours, knn_edges, sum_silhouettes
from darkvec_stream.clusters.quality import adjusted_rand, merges_and_splits, noise_as_singletons
from darkvec_stream.clusters.synthetic import nested_blobs, unit_rows
from darkvec_stream.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def blobs():
    return nested_blobs(seed=7, member_spread=0.8, subgroup_spread=0.8, background=1000)


def test_default_ari_beats_paper_recipe(blobs):
    default = SenderClusterer(seed=7).cluster(blobs.keys, blobs.vectors)
    paper = SenderClusterer(method="darkvec-paper", seed=7).cluster(blobs.keys, blobs.vectors)
    default_ari = adjusted_rand(blobs.subgroups, default.labels)
    paper_ari = adjusted_rand(blobs.subgroups, paper.labels)
    assert default_ari >= 0.8
    assert paper_ari < 0.5
    assert default_ari > paper_ari + 0.3


def test_paper_recipe_splits_the_large_group(blobs):
    paper = SenderClusterer(method="darkvec-paper", seed=7).cluster(blobs.keys, blobs.vectors)
    _, split = merges_and_splits(blobs.subgroups, paper.labels)
    assert "g0/s0" in split
    assert len(split["g0/s0"]) >= 3


def test_louvain_and_hdbscan_find_structure(blobs):
    for method in ("louvain", "hdbscan"):
        result = SenderClusterer(method=method, seed=7).cluster(blobs.keys, blobs.vectors)
        assert adjusted_rand(blobs.subgroups, result.labels) >= 0.8, method


def test_same_seed_same_clusters(blobs):
    first = SenderClusterer(seed=3).cluster(blobs.keys, blobs.vectors)
    second = SenderClusterer(seed=3).cluster(blobs.keys, blobs.vectors)
    assert np.array_equal(first.labels, second.labels)
    louvain = [SenderClusterer(method="louvain", seed=3).cluster(blobs.keys, blobs.vectors) for _ in range(2)]
    assert np.array_equal(louvain[0].labels, louvain[1].labels)


def test_labels_ordered_by_size_and_small_clusters_noise():
    data = nested_blobs(group_sizes=((50,), (20,), (3,)), background=0, seed=2)
    result = SenderClusterer(min_cluster_size=5, seed=2).cluster(data.keys, data.vectors)
    sizes = [len(members) for members in result.clusters().values()]
    assert sizes == [50, 20]
    assert len(result.noise) == 3
    assert set(result.noise) == {key for key, group in zip(data.keys, data.groups) if group == "g2"}


def test_exact_silhouettes_match_sklearn():
    from sklearn.metrics import silhouette_samples

    data = nested_blobs(group_sizes=((40,), (30,), (20,)), background=0, seed=4)
    result = SenderClusterer(seed=4).cluster(data.keys, data.vectors)
    assert result.silhouette_method == "exact"
    expected = silhouette_samples(data.vectors, result.labels, metric="cosine")
    assert np.allclose(result.silhouettes, expected, atol=1e-5)
    means = result.cluster_silhouettes()
    assert all(value > 0.5 for value in means.values())


def test_sum_silhouette_above_size_limit():
    data = nested_blobs(group_sizes=((40,), (30,), (20,)), background=0, seed=4)
    exact = SenderClusterer(seed=4).cluster(data.keys, data.vectors)
    summed = SenderClusterer(seed=4, silhouette_exact_max=10).cluster(data.keys, data.vectors)
    assert summed.silhouette_method == "cluster-sums"
    assert np.array_equal(exact.labels, summed.labels)
    assert np.allclose(exact.silhouettes, summed.silhouettes, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(3, 60), clusters=st.integers(2, 8), seed=st.integers(0, 20), dim=st.integers(2, 9))
def test_sum_silhouettes_match_sklearn(count, clusters, seed, dim):
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng.normal(size=(count, dim))).astype(np.float64)
    # Random labels leave some clusters with one member, which sklearn scores 0.
    labels = rng.integers(0, min(clusters, count - 1), size=count)
    labels = np.unique(labels, return_inverse=True)[1]
    if labels.max() < 1:
        labels[0] = 1
    expected = silhouette_samples(vectors, labels, metric="cosine")
    assert np.allclose(sum_silhouettes(vectors, labels, int(labels.max()) + 1), expected, atol=1e-6)


def test_sum_silhouettes_in_blocks(monkeypatch):
    data = nested_blobs(group_sizes=((40,), (30,), (20,)), background=0, seed=8)
    labels = np.asarray([int(group[1:]) for group in data.groups])
    whole = sum_silhouettes(data.vectors, labels, 3)
    monkeypatch.setattr(clustering, "SILHOUETTE_BLOCK_CELLS", 7)
    assert np.array_equal(sum_silhouettes(data.vectors, labels, 3), whole)


def test_cluster_silhouette_means():
    data = nested_blobs(group_sizes=((30,), (20,)), background=10, seed=5)
    result = SenderClusterer(seed=5).cluster(data.keys, data.vectors)
    means = result.cluster_silhouettes()
    for label in range(result.n_clusters):
        assert means[label] == pytest.approx(float(np.mean(result.silhouettes[result.labels == label])))


def test_noise_silhouette_is_nan():
    data = nested_blobs(group_sizes=((30,), (30,)), background=20, seed=5)
    result = SenderClusterer(seed=5).cluster(data.keys, data.vectors)
    noise = result.labels == NOISE
    assert noise.any()
    assert np.isnan(result.silhouettes[noise]).all()
    assert np.isfinite(result.silhouettes[~noise]).all()


def test_centroids_are_unit_means():
    data = nested_blobs(group_sizes=((30,), (25,)), background=0, seed=6)
    result = SenderClusterer(seed=6).cluster(data.keys, data.vectors)
    assert np.allclose(np.linalg.norm(result.centroids, axis=1), 1.0, atol=1e-5)
    mean = data.vectors[result.labels == 0].mean(axis=0)
    assert np.allclose(result.centroids[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_empty_and_tiny_inputs():
    clusterer = SenderClusterer()
    empty = clusterer.cluster([], np.zeros((0, 8), dtype=np.float32))
    assert empty.n_clusters == 0
    one = clusterer.cluster(["1.2.3.4"], unit_rows(np.ones((1, 8))))
    assert one.labels.tolist() == [NOISE]
    for method in ("louvain", "hdbscan", "darkvec-paper"):
        assert SenderClusterer(method=method).cluster(["a", "b"], unit_rows(np.eye(2))).keys == ("a", "b")


def test_bad_vectors_rejected_with_sender_named():
    vectors = unit_rows(np.ones((3, 4)))
    vectors[1] = np.nan
    with pytest.raises(InputError, match="'b'"):
        SenderClusterer().cluster(["a", "b", "c"], vectors)
    with pytest.raises(InputError, match="all zeros"):
        SenderClusterer().cluster(["a", "b"], np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(InputError, match="one vector row per sender"):
        SenderClusterer().cluster(["a"], unit_rows(np.ones((2, 4))))
    with pytest.raises(InputError, match="unique"):
        SenderClusterer().cluster(["a", "a"], unit_rows(np.ones((2, 4))))


def test_bad_settings_rejected():
    with pytest.raises(ConfigError, match="kmeans"):
        SenderClusterer(method="kmeans")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="resolution"):
        SenderClusterer(resolution=0)
    with pytest.raises(ConfigError, match="min_similarity"):
        SenderClusterer(min_similarity=2.0)
    with pytest.raises(ConfigError, match="large_min_senders"):
        SenderClusterer(large_min_senders=0)
    with pytest.raises(ConfigError, match="ivf_nprobe"):
        SenderClusterer(ivf_nprobe=0)
    with pytest.raises(ConfigError, match="split_min_gain"):
        SenderClusterer(split_min_gain=3.0)
    with pytest.raises(ConfigError, match="split_resolution"):
        SenderClusterer(split_resolution=0.0)
    with pytest.raises(ConfigError, match="split_max_depth"):
        SenderClusterer(split_max_depth=0)


def test_noise_scored_as_singletons():
    labels = np.array([0, 0, NOISE, NOISE])
    assert noise_as_singletons(labels).tolist() == [0, 0, 1, 2]
    assert adjusted_rand(["a", "a", "b", "c"], labels) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 40), k=st.integers(1, 12), min_similarity=st.floats(-1, 1), seed=st.integers(0, 10))
def test_knn_edges_are_valid(count, k, min_similarity, seed):
    vectors = unit_rows(np.random.default_rng(seed).normal(size=(count, 6)))
    sources, targets, weights = knn_edges(vectors, k, min_similarity)
    assert np.all(sources < targets)
    assert np.all(targets < count)
    assert len(set(zip(sources.tolist(), targets.tolist()))) == len(sources)
    assert np.all(weights > 0)
    assert np.all(weights <= 1.0)
    assert np.all(weights >= min_similarity)
    expected = (vectors[sources] * vectors[targets]).sum(axis=1)
    assert np.allclose(weights, expected, atol=1e-5)


@pytest.fixture(scope="module")
def mid_blobs():
    """Six thousand senders: enough inverted lists for the IVF path to probe a small share."""
    groups = ((900,), (300, 200), (250,), (150, 150), (100,), (80, 60), (50,), (40,), (30,))
    return nested_blobs(group_sizes=groups, background=2000, member_spread=0.8, subgroup_spread=0.8, seed=11)


def test_default_path_is_leidenalg_on_exact_graph(mid_blobs):
    import igraph
    import leidenalg

    result = SenderClusterer(seed=4, split_min_gain=None).cluster(mid_blobs.keys, mid_blobs.vectors)
    sources, targets, weights = knn_edges(clustering.validate_vectors(mid_blobs.keys, mid_blobs.vectors), 10, 0.5)
    graph = igraph.Graph(n=len(mid_blobs.keys), edges=list(zip(sources.tolist(), targets.tolist())))
    graph.es["weight"] = weights.tolist()
    partition = leidenalg.find_partition(graph, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                         resolution_parameter=0.5, seed=4, n_iterations=-1)
    expected = clustering._relabel(np.asarray(partition.membership), mid_blobs.keys, 5)
    assert np.array_equal(result.labels, expected)


def test_exact_graph_below_large_threshold(mid_blobs):
    vectors = clustering.validate_vectors(mid_blobs.keys, mid_blobs.vectors)
    exact = knn_edges(vectors, 10, 0.5)
    at_limit = knn_edges(vectors, 10, 0.5, exact_max=len(vectors))
    for left, right in zip(exact, at_limit):
        assert np.array_equal(left, right)


def test_ivf_neighbours_close_to_exact(mid_blobs):
    vectors = clustering.validate_vectors(mid_blobs.keys, mid_blobs.vectors)
    exact_similarity, _ = clustering.exact_neighbours(vectors, 11)
    ivf_similarity, ivf_ids = ivf_neighbours(vectors, 11, nprobe=16)
    grouped = np.asarray([group != "background" for group in mid_blobs.groups])
    assert (ivf_ids[:, 0] == np.arange(len(vectors))).mean() > 0.99
    # In a dense group many neighbours are nearly as close as the exact ones,
    # so compare how similar the found neighbours are, not which ones they are.
    ratio = ivf_similarity[grouped, 1:].mean() / exact_similarity[grouped, 1:].mean()
    assert ratio > 0.97


def test_large_path_keeps_structure(mid_blobs):
    exact = SenderClusterer(seed=4).cluster(mid_blobs.keys, mid_blobs.vectors)
    for method in ("leiden", "louvain"):
        large = SenderClusterer(method=method, seed=4, large_min_senders=1000).cluster(
            mid_blobs.keys, mid_blobs.vectors)
        assert large.parameters["large_min_senders"] == 1000
        assert adjusted_rand(mid_blobs.subgroups, large.labels) >= 0.9, method
        assert adjusted_rand(mid_blobs.subgroups, large.labels) >= adjusted_rand(
            mid_blobs.subgroups, exact.labels) - 0.05, method


def test_large_path_repeats_with_seed(mid_blobs):
    runs = [SenderClusterer(seed=2, large_min_senders=1000).cluster(mid_blobs.keys, mid_blobs.vectors)
            for _ in range(2)]
    assert np.array_equal(runs[0].labels, runs[1].labels)
    # Large runs skip the split: its cost grows with clusters times graph size.
    assert set(runs[0].timings_s) == {"graph", "communities", "silhouettes"}


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_split_separates_merged_small_groups(seed):
    # Sub-groups of 10-12 close senders sit next to one large group. At the
    # resolution that keeps the large group whole, they share clusters.
    data = nested_blobs(group_sizes=((600,), (10, 10, 10), (12, 12)), member_spread=0.25, subgroup_spread=0.6,
                        background=100, seed=seed)
    unsplit = SenderClusterer(seed=seed, split_min_gain=None).cluster(data.keys, data.vectors)
    split = SenderClusterer(seed=seed).cluster(data.keys, data.vectors)
    assert merges_and_splits(data.subgroups, unsplit.labels)[0]
    assert merges_and_splits(data.subgroups, split.labels) == ({}, {})
    assert split.n_clusters == 6
    assert "split" in split.timings_s


def test_split_keeps_dense_groups_whole():
    data = nested_blobs(group_sizes=((1500,), (30,), (20,)), background=50, seed=9)
    result = SenderClusterer(seed=9).cluster(data.keys, data.vectors)
    _, split = merges_and_splits(data.subgroups, result.labels)
    assert split == {}
    assert sorted(len(members) for members in result.clusters().values()) == [20, 30, 1500]


def test_split_not_applied_to_paper_recipe(blobs):
    paper = SenderClusterer(method="darkvec-paper", seed=7).cluster(blobs.keys, blobs.vectors)
    assert "split" not in paper.timings_s
