"""The report's plots, rendered by matplotlib (Agg) to PNG bytes.

Each cluster gets an activity raster (senders x windows) and a port heat map
(senders x the cluster's busiest ports). The whole model gets a 2-D map of
the embedding, coloured by label and by cluster, and the alert timeline.
Every plot has a bounded size: senders are sampled deterministically and
the map projects at most a fixed number of senders. It computes no table
and writes no file.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from darkvec_stream.errors import ConfigError
from darkvec_stream.query.history import SenderHistory, WindowSpan
from darkvec_stream.query.state import AnalystState

logger = logging.getLogger(__name__)

DPI = 80
NS_PER_HOUR = 3_600_000_000_000
MAP_METHODS = ("pca", "tsne")
MAX_NAMED_ROWS = 30
MAX_TEXT_CHARS = 40
MAX_TITLE_CHARS = 120
MAX_LEGEND_LABELS = 9
UNLABELLED = "unlabelled"
SEVERITY_COLOURS = {"low": "#4c78a8", "medium": "#f58518", "high": "#e45756"}
# Never hand text to an external TeX: sender names, labels and alert types
# come from traffic and label files (``_short`` escapes their '$' for mathtext).
PLAIN_TEXT = {"text.usetex": False}


@dataclass(frozen=True)
class Plot:
    """One rendered figure: PNG bytes, their pixel size, and a title and alt text for the page."""

    title: str
    png: bytes
    width_px: int
    height_px: int
    alt: str


# -- sampling ------------------------------------------------------------------


def sample_senders(senders: Iterable[str], limit: int, seed: int = 0) -> list[str]:
    """Pick at most ``limit`` senders, the same ones for the same input and seed.

    Senders are ranked by a keyed hash rather than a random generator, so
    the sample of a cluster does not change when other clusters change.
    """
    if limit < 1:
        raise ConfigError(f"sample limit {limit} is invalid: show at least 1 sender")
    unique = sorted(set(senders))
    if len(unique) <= limit:
        return unique
    key = seed.to_bytes(8, "big", signed=True)
    ranked = sorted(unique, key=lambda sender: hashlib.blake2b(sender.encode(), digest_size=8, key=key).digest())
    return sorted(ranked[:limit])


def order_by_first_activity(senders: Sequence[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sort rows by their first active column, then by packets (busiest first), then by sender."""
    active = matrix > 0
    first = np.where(active.any(axis=1), active.argmax(axis=1), matrix.shape[1])
    totals = matrix.sum(axis=1)
    order = sorted(range(len(senders)), key=lambda row: (first[row], -totals[row], senders[row]))
    return [senders[row] for row in order], matrix[order] if len(order) else matrix


# -- per-cluster plots ---------------------------------------------------------


def activity_raster(history: SenderHistory, cluster_id: str, senders: Sequence[str], members: int) -> Plot | None:
    """Draw the packets of each sampled sender (rows) in each remembered window (columns).

    ``members`` is the cluster's full size, shown beside the sample size.
    Returns None when the history remembers no window.
    """
    spans, matrix = history.activity_matrix(list(senders))
    if not spans or not len(senders):
        return None
    ordered, matrix = order_by_first_activity(list(senders), matrix)
    with matplotlib.rc_context(PLAIN_TEXT):
        figure = Figure(figsize=(7.0, _rows_height(len(ordered))), layout="constrained")
        axes = figure.add_subplot()
        image = _heat(axes, matrix)
        _time_ticks(axes, spans)
        _sender_ticks(axes, ordered, members)
        axes.set_xlabel("window start (UTC)")
        title = f"{cluster_id}: activity of {len(ordered)} of {members} senders over {len(spans)} windows"
        axes.set_title(_short(title, MAX_TITLE_CHARS), fontsize=9)
        if image is not None:
            figure.colorbar(image, ax=axes, label="packets (log scale)", shrink=0.8)
        return _render(figure, title, f"Activity raster of cluster {cluster_id}")


def port_heatmap(
    history: SenderHistory, cluster_id: str, senders: Sequence[str], ports: Sequence[int], members: int
) -> Plot | None:
    """Draw each sampled sender's packets (rows) to each of the cluster's busiest ports (columns).

    Rows keep the order given (the raster's). Returns None without ports.
    """
    if not ports or not len(senders):
        return None
    column = {port: position for position, port in enumerate(ports)}
    matrix = np.zeros((len(senders), len(ports)), dtype=np.int64)
    for row, sender in enumerate(senders):
        summary = history.get(sender)
        for port, packets in (summary.ports.items() if summary else ()):
            if port in column:
                matrix[row, column[port]] = packets
    with matplotlib.rc_context(PLAIN_TEXT):
        figure = Figure(figsize=(max(3.5, 1.6 + 0.28 * len(ports)), _rows_height(len(senders))), layout="constrained")
        axes = figure.add_subplot()
        image = _heat(axes, matrix, cmap="magma_r")
        axes.set_xticks(range(len(ports)), [str(port) for port in ports], rotation=90, fontsize=7)
        axes.set_xlabel("destination port")
        _sender_ticks(axes, list(senders), members)
        title = f"{cluster_id}: packets per port, {len(ports)} busiest ports"
        axes.set_title(_short(title, MAX_TITLE_CHARS), fontsize=9)
        if image is not None:
            figure.colorbar(image, ax=axes, label="packets (log scale)", shrink=0.8)
        return _render(figure, title, f"Port heat map of cluster {cluster_id}")


def _heat(axes: Any, matrix: np.ndarray, cmap: str = "viridis") -> Any:
    # Zero cells stay white so that silence reads as blank paper.
    masked = np.ma.masked_less_equal(matrix, 0)
    if masked.count() == 0:
        axes.imshow(np.zeros(matrix.shape), cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        return None
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    norm = LogNorm(vmin=1, vmax=max(2, int(masked.max())))
    return axes.imshow(masked, cmap=colours, norm=norm, aspect="auto", interpolation="nearest")


def _rows_height(rows: int) -> float:
    return float(min(7.0, max(2.6, 1.4 + 0.03 * rows)))


def _time_ticks(axes: Any, spans: Sequence[WindowSpan]) -> None:
    positions = np.unique(np.linspace(0, len(spans) - 1, num=min(len(spans), 8)).round().astype(int))
    labels = [_utc(spans[position].start_ns) for position in positions]
    axes.set_xticks(positions, labels, rotation=30, ha="right", fontsize=7)


def _sender_ticks(axes: Any, senders: Sequence[str], members: int) -> None:
    if len(senders) <= MAX_NAMED_ROWS:
        axes.set_yticks(range(len(senders)), [_short(sender) for sender in senders], fontsize=6)
        axes.set_ylabel("sender")
    else:
        axes.set_yticks([])
        sampled = " (sampled)" if len(senders) < members else ""
        axes.set_ylabel(f"{len(senders)} senders{sampled}")


# -- embedding map -------------------------------------------------------------


def project_embedding(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project L2-normalised vectors to 2-D by PCA or by t-SNE (cosine metric, seeded)."""
    if method not in MAP_METHODS:
        raise ConfigError(f"map method {method!r} is unknown: use one of {', '.join(MAP_METHODS)}")
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms > 0, norms, 1.0)
    if method == "tsne" and len(matrix) > 3:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(matrix) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    random_state=seed).fit_transform(matrix)
    centred = matrix - matrix.mean(axis=0)
    # The SVD of the centred matrix gives the principal axes. Each axis's sign
    # is fixed by its largest loading, so two runs draw the same picture.
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    projected = centred @ (axes * signs[:, None]).T
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((len(projected), 2 - projected.shape[1]))])
    return projected


def embedding_map(
    state: AnalystState, clusters: Sequence[str], max_senders: int = 3000, method: str = "pca", seed: int = 0
) -> Plot | None:
    """Draw the embedding in 2-D twice: coloured by label, and by the given clusters.

    At most ``max_senders`` senders are projected (a deterministic sample).
    Clusters not in ``clusters`` are drawn in grey. Returns None below 3 senders.
    """
    keys = sample_senders(state.embedding.keys(), max_senders, seed) if len(state.embedding) else []
    senders, vectors = state.embedding.vectors(keys)
    if len(senders) < 3:
        return None
    points = project_embedding(vectors, method, seed)
    with matplotlib.rc_context(PLAIN_TEXT):
        figure = Figure(figsize=(12.0, 5.2), layout="constrained")
        by_label, by_cluster = figure.subplots(1, 2)
        _draw_labels(by_label, state, senders, points)
        _draw_clusters(by_cluster, state, senders, points, clusters)
        total = len(state.embedding)
        sample = f"{len(senders)} of {total} senders (sampled)" if len(senders) < total else f"{total} senders"
        title = f"Embedding map ({method.upper()}), {sample}"
        figure.suptitle(_short(title, MAX_TITLE_CHARS), fontsize=10)
        return _render(figure, title, "Two-dimensional map of the sender embedding, coloured by label and by cluster")


def _draw_labels(axes: Any, state: AnalystState, senders: Sequence[str], points: np.ndarray) -> None:
    names, inferred = [], []
    for sender in senders:
        view = state.labels.get(sender)
        names.append(view.label if view is not None and view.label is not None else UNLABELLED)
        inferred.append(view is not None and view.source == "knn")
    counts = Counter(name for name in names if name != UNLABELLED)
    legend_labels = [label for label, _ in counts.most_common(MAX_LEGEND_LABELS)]
    colours = matplotlib.colormaps["tab10"]
    groups = [(UNLABELLED, "#d0d0d0")] + [(label, colours(i)) for i, label in enumerate(legend_labels)]
    other = [i for i, name in enumerate(names) if name != UNLABELLED and name not in legend_labels]
    for label, colour in groups:
        rows = [i for i, name in enumerate(names) if name == label]
        truth = [i for i in rows if not inferred[i] or label == UNLABELLED]
        guessed = [i for i in rows if inferred[i] and label != UNLABELLED]
        _scatter(axes, points, truth, colour, f"{_short(label)} ({len(rows)})", filled=True)
        _scatter(axes, points, guessed, colour, None, filled=False)
    _scatter(axes, points, other, "#555555", f"other labels ({len(other)})", filled=True)
    axes.set_title("by label (filled: ground truth, ring: inferred by kNN)", fontsize=9)
    _finish_map(axes)


def _draw_clusters(
    axes: Any, state: AnalystState, senders: Sequence[str], points: np.ndarray, clusters: Sequence[str]
) -> None:
    assigned = [state.journal.sender_cluster.get(sender, (None, None))[0] for sender in senders]
    coloured = list(clusters)[:20]
    colours = matplotlib.colormaps["tab20"]
    unclustered = [i for i, cluster in enumerate(assigned) if cluster is None]
    other = [i for i, cluster in enumerate(assigned) if cluster is not None and cluster not in coloured]
    _scatter(axes, points, unclustered, "#e0e0e0", f"not clustered ({len(unclustered)})", filled=True)
    _scatter(axes, points, other, "#888888", f"other clusters ({len(other)})", filled=True)
    for position, cluster in enumerate(coloured):
        rows = [i for i, value in enumerate(assigned) if value == cluster]
        _scatter(axes, points, rows, colours(position % 20), f"{_short(cluster)} ({len(rows)})", filled=True)
    axes.set_title("by cluster (the clusters plotted in this report)", fontsize=9)
    _finish_map(axes)


def _scatter(axes: Any, points: np.ndarray, rows: list[int], colour: Any, label: str | None, filled: bool) -> None:
    if not rows:
        return
    xy = points[rows]
    if filled:
        axes.scatter(xy[:, 0], xy[:, 1], s=9, color=colour, label=label, linewidths=0)
    else:
        axes.scatter(xy[:, 0], xy[:, 1], s=12, facecolors="none", edgecolors=[colour], label=label, linewidths=0.7)


def _finish_map(axes: Any) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


# -- alert timeline ------------------------------------------------------------


def alert_timeline(alerts: Sequence[Mapping[str, Any]]) -> Plot | None:
    """Draw each alert at its time on the row of its type, coloured by severity.

    Alerts without an integer ``time_ns`` are skipped. Returns None without alerts.
    """
    rows = [(int(alert["time_ns"]), str(alert.get("type", "?")), str(alert.get("severity", "?")))
            for alert in alerts if isinstance(alert.get("time_ns"), int)]
    if not rows:
        return None
    types = [name for name, _ in Counter(row[1] for row in rows).most_common()]
    position = {name: index for index, name in enumerate(types)}
    with matplotlib.rc_context(PLAIN_TEXT):
        figure = Figure(figsize=(10.0, 1.6 + 0.45 * len(types)), layout="constrained")
        axes = figure.add_subplot()
        for severity in sorted({row[2] for row in rows}):
            chosen = [row for row in rows if row[2] == severity]
            times = [_utc_datetime(row[0]) for row in chosen]
            offsets = [position[row[1]] for row in chosen]
            axes.scatter(times, offsets, s=160, marker="|", linewidths=1.5,
                         color=SEVERITY_COLOURS.get(severity, "#777777"), label=f"{_short(severity)} ({len(chosen)})")
        counts = Counter(row[1] for row in rows)
        axes.set_yticks(range(len(types)), [f"{_short(name)} ({counts[name]})" for name in types], fontsize=8)
        axes.set_ylim(-0.6, len(types) - 0.4)
        first_ns, last_ns = min(row[0] for row in rows), max(row[0] for row in rows)
        if first_ns == last_ns:
            # One instant gives the date locator an empty range: show an hour each side.
            axes.set_xlim(_utc_datetime(first_ns - NS_PER_HOUR), _utc_datetime(last_ns + NS_PER_HOUR))
        locator = AutoDateLocator(maxticks=8)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=timezone.utc))
        axes.set_xlabel("window end (UTC)")
        axes.legend(title="severity", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                    frameon=False)
        title = f"Alert timeline, {len(rows)} alerts by type"
        axes.set_title(_short(title, MAX_TITLE_CHARS), fontsize=9)
        return _render(figure, title, "Timeline of alerts by type and severity")


# -- helpers -------------------------------------------------------------------


def _render(figure: Figure, title: str, alt: str) -> Plot:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    width, height = (figure.get_size_inches() * DPI).round().astype(int)
    return Plot(title, buffer.getvalue(), int(width), int(height), alt)


def _short(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Shorten text from data and escape '$', which mathtext would read as the start of a formula."""
    shortened = text if len(text) <= limit else text[: limit - 1] + "…"
    return shortened.replace("$", r"\$")


def _utc_datetime(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)


def _utc(time_ns: int) -> str:
    return _utc_datetime(time_ns).strftime("%Y-%m-%d %H:%M")
