"""Plots: deterministic samples, row order, projections, and PNGs of the size the page declares."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from darkvec_stream.errors import ConfigError
from darkvec_stream.query.state import AnalystState
from darkvec_stream.report import plots
from tests.report.conftest import HOSTILE_CLUSTER, HOSTILE_SENDERS, TELNET_CLUSTER, TELNET_SENDERS


def _decoded_size(plot: plots.Plot) -> tuple[int, int]:
    image = Image.open(io.BytesIO(plot.png))
    assert image.format == "PNG"
    return image.size


def _ink_share(plot: plots.Plot) -> float:
    pixels = np.asarray(Image.open(io.BytesIO(plot.png)).convert("L"))
    return float((pixels < 250).mean())


@given(st.lists(st.text(min_size=1, max_size=6), max_size=60), st.integers(1, 20), st.integers(0, 5))
def test_sample_is_a_deterministic_subset(senders: list[str], limit: int, seed: int) -> None:
    sample = plots.sample_senders(senders, limit, seed)
    assert set(sample) <= set(senders)
    assert len(sample) == min(limit, len(set(senders)))
    shuffled = list(senders)
    random.Random(seed).shuffle(shuffled)
    assert plots.sample_senders(shuffled, limit, seed) == sample


def test_sample_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="sample limit 0"):
        plots.sample_senders(["a"], 0)


def test_rows_ordered_by_first_activity() -> None:
    matrix = np.array([[0, 0, 5], [3, 0, 0], [0, 9, 1], [0, 0, 0], [1, 0, 0]])
    senders, ordered = plots.order_by_first_activity(["a", "b", "c", "d", "e"], matrix)
    assert senders == ["b", "e", "c", "a", "d"]
    assert ordered.tolist() == [[3, 0, 0], [1, 0, 0], [0, 9, 1], [0, 0, 5], [0, 0, 0]]


def test_raster_png_matches_declared_size(hand_state: AnalystState) -> None:
    plot = plots.activity_raster(hand_state.history, TELNET_CLUSTER, list(TELNET_SENDERS), 4)
    assert plot is not None
    assert _decoded_size(plot) == (plot.width_px, plot.height_px)
    assert plot.title == f"{TELNET_CLUSTER}: activity of 4 of 4 senders over 4 windows"
    assert _ink_share(plot) > 0.02


def test_raster_without_history_is_none(hand_state: AnalystState) -> None:
    empty = type(hand_state.history)()
    assert plots.activity_raster(empty, TELNET_CLUSTER, list(TELNET_SENDERS), 4) is None


def test_hostile_names_render_in_plots(hand_state: AnalystState) -> None:
    # A '$' pair would be parsed as mathtext; escaped, it renders as text.
    raster = plots.activity_raster(hand_state.history, HOSTILE_CLUSTER, list(HOSTILE_SENDERS), 3)
    heatmap = plots.port_heatmap(hand_state.history, HOSTILE_CLUSTER, list(HOSTILE_SENDERS), [445, 80], 3)
    assert raster is not None and heatmap is not None
    assert _decoded_size(heatmap) == (heatmap.width_px, heatmap.height_px)
    assert HOSTILE_CLUSTER in raster.title


def test_heatmap_without_ports_is_none(hand_state: AnalystState) -> None:
    assert plots.port_heatmap(hand_state.history, TELNET_CLUSTER, list(TELNET_SENDERS), [], 4) is None


def test_pca_finds_the_spread_axis() -> None:
    rng = np.random.default_rng(0)
    # Two tight groups far apart along one direction: PCA's first axis separates them.
    base = np.zeros((40, 6))
    base[:20, 0], base[20:, 1] = 1.0, 1.0
    vectors = base + rng.normal(scale=0.01, size=base.shape)
    points = plots.project_embedding(vectors, "pca")
    assert points.shape == (40, 2)
    first, second = points[:20, 0], points[20:, 0]
    assert max(first.max(), second.max()) - min(first.min(), second.min()) > 1.0
    assert (first.max() < second.min()) or (second.max() < first.min())
    assert np.array_equal(points, plots.project_embedding(vectors.copy(), "pca"))


def test_projection_of_two_dimensional_input() -> None:
    points = plots.project_embedding(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert points.shape == (3, 2)


def test_unknown_projection_is_rejected() -> None:
    with pytest.raises(ConfigError, match="map method 'umap'"):
        plots.project_embedding(np.eye(4), "umap")


@pytest.mark.slow
def test_tsne_is_seeded() -> None:
    vectors = np.random.default_rng(1).normal(size=(40, 8))
    first = plots.project_embedding(vectors, "tsne", seed=3)
    assert first.shape == (40, 2)
    assert np.allclose(first, plots.project_embedding(vectors, "tsne", seed=3))


def test_embedding_map_renders_labels_and_clusters(hand_state: AnalystState) -> None:
    plot = plots.embedding_map(hand_state, [TELNET_CLUSTER, HOSTILE_CLUSTER], max_senders=5)
    assert plot is not None
    assert plot.title == "Embedding map (PCA), 5 of 7 senders (sampled)"
    assert _decoded_size(plot) == (plot.width_px, plot.height_px)


def test_alert_timeline_skips_alerts_without_time(hand_state: AnalystState) -> None:
    plot = plots.alert_timeline(list(hand_state.journal.alerts))
    assert plot is not None
    assert plot.title == "Alert timeline, 1 alerts by type"
    assert plots.alert_timeline([]) is None
    assert plots.alert_timeline([{"type": "x", "time_ns": None}]) is None
