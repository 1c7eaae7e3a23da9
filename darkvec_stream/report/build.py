"""Assemble the analyst report from a loaded state and write it as HTML and JSON.

``build_report`` computes the tables and renders the plots within the
bounds of ``ReportOptions``; ``write_report`` writes ``report.html`` (self
contained) and ``report.json`` (the tables) into a directory. Loading and
verifying the state is ``AnalystState``'s job, and choosing the output
directory is the command's.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.query.state import AnalystState
from darkvec_stream.report import plots
from darkvec_stream.report.html import render_html
from darkvec_stream.report.tables import ClusterRow, EvaluationResult, cluster_rows, evaluation_table

logger = logging.getLogger(__name__)

HTML_FILE = "report.html"
JSON_FILE = "report.json"
JSON_FORMAT = "darkvec-stream.report/1"


@dataclass(frozen=True)
class ReportOptions:
    """Bounds and choices of one report.

    ``clusters`` is how many clusters get plots, largest first (the table
    lists them all). ``senders_per_cluster`` bounds the rows of each raster
    and heat map and ``ports_per_cluster`` the heat map's columns.
    ``map_senders`` bounds the senders projected on the embedding map,
    ``evaluation_max_unknown`` the unlabelled senders sampled for the
    evaluation with an unknown class, and ``recent_alerts`` the rows of the
    alert table.
    """

    title: str = "darkvec-stream analyst report"
    clusters: int = 20
    senders_per_cluster: int = 200
    ports_per_cluster: int = 20
    map_senders: int = 3000
    map_method: str = "pca"
    evaluation_max_unknown: int = 5000
    recent_alerts: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("clusters", "senders_per_cluster", "ports_per_cluster", "map_senders",
                     "evaluation_max_unknown", "recent_alerts"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"report option {name} {value} is invalid: use 1 or more")
        if self.map_method not in plots.MAP_METHODS:
            raise ConfigError(
                f"report map method {self.map_method!r} is unknown: use one of {', '.join(plots.MAP_METHODS)}"
            )


@dataclass(frozen=True)
class ClusterPlots:
    """The plots of one cluster and how many of its senders they show."""

    cluster_id: str
    anchor: str
    sampled_senders: int
    raster: plots.Plot | None
    ports: plots.Plot | None


@dataclass(frozen=True)
class ReportContent:
    """Everything the page and the JSON file show."""

    title: str
    generated_at: str
    facts: dict[str, Any]
    rows: list[ClusterRow]
    cluster_plots: list[ClusterPlots]
    embedding_map: plots.Plot | None
    evaluation: EvaluationResult
    alert_counts: dict[str, dict[str, int]]
    recent_alerts: list[dict[str, Any]]
    alert_timeline: plots.Plot | None
    options: ReportOptions
    timings_s: dict[str, float] = field(default_factory=dict)


def build_report(
    state: AnalystState,
    labeller: KnnLabeller,
    options: ReportOptions = ReportOptions(),
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> ReportContent:
    """Compute the tables and render the plots of one report."""
    timings: dict[str, float] = {}

    # 1. Tables: clusters of the last run, then the label evaluation.
    started = time.monotonic()
    rows = cluster_rows(state)
    timings["cluster_table"] = time.monotonic() - started
    started = time.monotonic()
    evaluation = evaluation_table(state, labeller, options.evaluation_max_unknown, options.seed)
    timings["evaluation"] = time.monotonic() - started

    # 2. Per-cluster plots for the largest clusters.
    started = time.monotonic()
    plotted = rows[: options.clusters]
    cluster_plots = [_plots_of(state, row, position, options) for position, row in enumerate(plotted)]
    timings["cluster_plots"] = time.monotonic() - started

    # 3. Embedding map and alerts.
    started = time.monotonic()
    embedding_map = plots.embedding_map(state, [row.cluster_id for row in plotted], options.map_senders,
                                        options.map_method, options.seed)
    timings["embedding_map"] = time.monotonic() - started
    alerts = list(state.journal.alerts)
    started = time.monotonic()
    timeline = plots.alert_timeline(alerts)
    timings["alert_timeline"] = time.monotonic() - started

    logger.info("report built: %s clusters (%s plotted), %s alerts, timings %s",
                len(rows), len(cluster_plots), len(alerts), {k: round(v, 2) for k, v in timings.items()})
    return ReportContent(
        title=options.title,
        generated_at=now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        facts=_facts(state, rows),
        rows=rows,
        cluster_plots=cluster_plots,
        embedding_map=embedding_map,
        evaluation=evaluation,
        alert_counts=_alert_counts(alerts),
        recent_alerts=sorted(alerts, key=_alert_time, reverse=True)[: options.recent_alerts],
        alert_timeline=timeline,
        options=options,
        timings_s=timings,
    )


def _plots_of(state: AnalystState, row: ClusterRow, position: int, options: ReportOptions) -> ClusterPlots:
    members = state.journal.members(row.cluster_id)
    sample = plots.sample_senders(members, options.senders_per_cluster, options.seed)
    raster = plots.activity_raster(state.history, row.cluster_id, sample, len(members))
    # The heat map's rows follow the raster's order, so a sender is on the same row in both.
    spans, matrix = state.history.activity_matrix(sample)
    ordered, _ = plots.order_by_first_activity(sample, matrix)
    ports = [port for port, _ in _cluster_ports(state, members, options.ports_per_cluster)]
    heatmap = plots.port_heatmap(state.history, row.cluster_id, ordered, ports, len(members))
    return ClusterPlots(row.cluster_id, f"cluster-{position + 1}", len(sample), raster, heatmap)


def _cluster_ports(state: AnalystState, members: list[str], count: int) -> list[tuple[int, int]]:
    totals: Counter[int] = Counter()
    for sender in members:
        summary = state.history.get(sender)
        if summary is not None:
            totals.update(summary.ports)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:count]


def _facts(state: AnalystState, rows: list[ClusterRow]) -> dict[str, Any]:
    spans = state.history.windows
    return {
        "windows_closed": state.windows_closed,
        "senders_embedded": len(state.embedding),
        "senders_labelled": sum(1 for view in state.labels.values() if view.label is not None),
        "senders_clustered": len(state.journal.sender_cluster),
        "clusters": len(rows),
        "clustering_window_index": state.journal.window_index,
        "history_windows": len(spans),
        "history_start_ns": spans[0].start_ns if spans else None,
        "history_end_ns": spans[-1].end_ns if spans else None,
        "checkpoint": state.checkpoint.name if state.checkpoint is not None else None,
    }


def _alert_counts(alerts: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {
        "by_type": dict(Counter(str(alert.get("type", "?")) for alert in alerts).most_common()),
        "by_severity": dict(Counter(str(alert.get("severity", "?")) for alert in alerts).most_common()),
    }


def _alert_time(alert: dict[str, Any]) -> int:
    value = alert.get("time_ns")
    return value if isinstance(value, int) else -1


# -- output --------------------------------------------------------------------


def report_json(content: ReportContent) -> dict[str, Any]:
    """Return the report's tables as a JSON-ready document (no images)."""
    return {
        "format": JSON_FORMAT,
        "title": content.title,
        "generated_at": content.generated_at,
        "state": content.facts,
        "options": asdict(content.options),
        "clusters": [row.to_json() for row in content.rows],
        "plotted_clusters": [
            {"cluster_id": item.cluster_id, "sampled_senders": item.sampled_senders} for item in content.cluster_plots
        ],
        "evaluation": content.evaluation.to_json(),
        "alerts": {**content.alert_counts, "total": sum(content.alert_counts["by_type"].values()),
                   "recent": content.recent_alerts},
        "timings_s": {key: round(value, 3) for key, value in content.timings_s.items()},
    }


def write_report(content: ReportContent, directory: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``directory``; each file appears whole or not at all."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    html_path, json_path = directory / HTML_FILE, directory / JSON_FILE
    _write_atomically(json_path, json.dumps(report_json(content), indent=2, default=str) + "\n")
    _write_atomically(html_path, render_html(content))
    return html_path, json_path


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise InputError(f"cannot write the report file {path}: {error}") from error
