"""Render the report as one self-contained HTML page.

Images are PNG data URIs and the style sheet is inline, so the page needs
no network and no other file. It contains no script, and its content
security policy forbids loading anything but inline images and styles. Every string
that comes from data (sender names, labels, alert summaries, cluster ids,
the title) passes through ``html.escape``. It computes nothing.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from darkvec_stream.labels.evaluate import ScoreTable
from darkvec_stream.report.plots import Plot
from darkvec_stream.report.tables import ClusterRow

if TYPE_CHECKING:
    from darkvec_stream.report.build import ReportContent

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts td { border: none; padding: 1px 10px 1px 0; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 0.8em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; } .description { margin: 0.2em 0 0.6em 0; }
"""


def render_html(content: "ReportContent") -> str:
    """Return the whole page as a string."""
    sections = [
        _header(content),
        _cluster_table(content.rows, {item.cluster_id: item.anchor for item in content.cluster_plots}),
        _cluster_sections(content),
        _embedding_section(content.embedding_map),
        _evaluation_section(content),
        _alert_section(content),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(content.title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *sections,
        "</body>",
        "</html>",
        "",
    ])


# -- sections ------------------------------------------------------------------


def _header(content: "ReportContent") -> str:
    facts = content.facts
    start, end = facts.get("history_start_ns"), facts.get("history_end_ns")
    period = f"{_utc(start)} to {_utc(end)}" if start is not None and end is not None else "no window remembered"
    rows = [
        ("generated", content.generated_at),
        ("windows closed by the daemon", facts.get("windows_closed")),
        ("windows shown (history)", f"{facts.get('history_windows')}: {period}"),
        ("senders in the model", facts.get("senders_embedded")),
        ("senders with a label", facts.get("senders_labelled")),
        ("senders clustered / clusters", f"{facts.get('senders_clustered')} / {facts.get('clusters')}"),
        ("checkpoint", facts.get("checkpoint") or "-"),
    ]
    table = "".join(f"<tr><td>{_text(name)}</td><td>{_text(value)}</td></tr>" for name, value in rows)
    return f"<h1>{_text(content.title)}</h1>\n<table class=\"facts\">{table}</table>"


def _cluster_table(rows: Sequence[ClusterRow], anchors: dict[str, str]) -> str:
    header = _row(["Cluster", "Senders", "Ports", "Silhouette", "Top ports (packets)", "/24 spread",
                   "Label mix (ground truth + kNN)", "Description"], cell="th")
    body = []
    for row in rows:
        anchor = anchors.get(row.cluster_id)
        name = _text(row.cluster_id)
        cluster = f'<a href="#{anchor}">{name}</a>' if anchor else name
        body.append(
            "<tr>"
            f"<td>{cluster}</td>"
            f"<td class=\"num\">{row.senders}</td>"
            f"<td class=\"num\">{row.ports}</td>"
            f"<td class=\"num\">{_number(row.silhouette)}</td>"
            f"<td>{_text(', '.join(f'{port} ({packets})' for port, packets in row.top_ports) or '-')}</td>"
            f"<td>{_text(_spread(row))}</td>"
            f"<td>{_text(_label_mix(row))}</td>"
            f"<td>{_text(row.description)}</td>"
            "</tr>"
        )
    note = ("<p class=\"note\">Clusters of the last clustering run, largest first. Ports are the distinct "
            "destination ports among the members' remembered ports (the history keeps the busiest few per "
            "sender). Silhouette is the members' mean cosine silhouette: near 1, a tight and well separated "
            "group; near 0, a group on the border of others.</p>")
    if not rows:
        return "<h2>Clusters</h2>\n<p>No clustering run in this state yet.</p>"
    return f"<h2>Clusters</h2>\n{note}\n<table>{header}{''.join(body)}</table>"


def _cluster_sections(content: "ReportContent") -> str:
    if not content.cluster_plots:
        return ""
    rows = {row.cluster_id: row for row in content.rows}
    parts = [
        "<h2>Activity patterns and ports per cluster</h2>",
        f"<p class=\"note\">The {len(content.cluster_plots)} largest clusters; at most "
        f"{content.options.senders_per_cluster} senders each, a deterministic sample. Rows are senders in "
        "the order of their first active window; the heat map uses the same rows.</p>",
    ]
    for item in content.cluster_plots:
        row = rows[item.cluster_id]
        figures = [_figure(plot) for plot in (item.raster, item.ports) if plot is not None]
        body = "".join(figures) or "<p class=\"note\">No remembered activity for these senders.</p>"
        parts.append(
            f"<section id=\"{item.anchor}\"><h3>Cluster {_text(item.cluster_id)}</h3>"
            f"<p class=\"description\">{_text(row.description)}</p>"
            f"<div class=\"plots\">{body}</div></section>"
        )
    return "\n".join(parts)


def _embedding_section(plot: Plot | None) -> str:
    body = _figure(plot) if plot is not None else "<p>Fewer than 3 senders in the model: no map.</p>"
    return ("<h2>Embedding map</h2>\n<p class=\"note\">Each dot is a sender; nearby dots have similar "
            "vectors, that is, they reached the telescope with similar timing on similar services.</p>\n" + body)


def _evaluation_section(content: "ReportContent") -> str:
    evaluation = content.evaluation
    parts = ["<h2>Label evaluation (leave-one-out kNN)</h2>", f"<p class=\"note\">{_text(evaluation.note)}.</p>"]
    if evaluation.ground_truth_counts:
        counts = ", ".join(f"{label} {count}" for label, count in evaluation.ground_truth_counts.items())
        parts.append(f"<p class=\"note\">Ground-truth classes: {_text(counts)}.</p>")
    report = evaluation.report
    if report is None:
        return "\n".join(parts)
    settings = ", ".join(f"{key}={value}" for key, value in report.settings.items())
    parts.append(f"<p class=\"note\">Labeller: {_text(settings)}.</p>")
    titles = (
        (report.without_unknown, "Labelled senders only (an abstention counts as a miss)"),
        (report.with_unknown, "With the class 'unknown' (unlabelled senders; an abstention predicts it)"),
    )
    for table, title in titles:
        if table is not None:
            parts.append(_score_table(table, title))
    return "\n".join(parts)


def _score_table(table: ScoreTable, title: str) -> str:
    header = _row(["Class", "Precision", "Recall", "F1", "Support"], cell="th")
    body = "".join(
        "<tr>"
        f"<td>{_text(score.label)}</td><td class=\"num\">{score.precision:.3f}</td>"
        f"<td class=\"num\">{score.recall:.3f}</td><td class=\"num\">{score.f1:.3f}</td>"
        f"<td class=\"num\">{score.support}</td>"
        "</tr>"
        for score in table.classes
    )
    summary = (f"accuracy {table.accuracy:.3f}, macro F1 {table.macro_f1:.3f}, weighted F1 {table.weighted_f1:.3f}, "
               f"{table.queries} queries, abstain rate {table.abstain_rate:.3f}, "
               f"precision when labelling {table.precision_decided:.3f}")
    return f"<h3>{_text(title)}</h3>\n<table>{header}{body}</table>\n<p class=\"note\">{_text(summary)}</p>"


def _alert_section(content: "ReportContent") -> str:
    parts = ["<h2>Alerts</h2>"]
    total = sum(content.alert_counts["by_type"].values())
    if total == 0:
        parts.append("<p>No alert in the journal.</p>")
        return "\n".join(parts)
    by_type = ", ".join(f"{name} {count}" for name, count in content.alert_counts["by_type"].items())
    parts.append(f"<p class=\"note\">{total} alerts in the journal: {_text(by_type)}.</p>")
    if content.alert_timeline is not None:
        parts.append(_figure(content.alert_timeline))
    header = _row(["Window end (UTC)", "Type", "Severity", "Cluster", "Sender", "Summary"], cell="th")
    body = "".join(
        _row([_alert_time(alert), alert.get("type"), alert.get("severity"), alert.get("cluster_id"),
              alert.get("sender"), alert.get("summary")])
        for alert in content.recent_alerts
    )
    parts.append(f"<h3>The {len(content.recent_alerts)} most recent alerts</h3>\n<table>{header}{body}</table>")
    return "\n".join(parts)


# -- pieces --------------------------------------------------------------------


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        "<figure>"
        f"<img src=\"data:image/png;base64,{data}\" width=\"{plot.width_px}\" height=\"{plot.height_px}\" "
        f"alt=\"{_text(plot.alt)}\">"
        f"<figcaption>{_text(plot.title)}</figcaption>"
        "</figure>"
    )


def _row(values: Iterable[Any], cell: str = "td") -> str:
    return "<tr>" + "".join(f"<{cell}>{_text(value)}</{cell}>" for value in values) + "</tr>"


def _text(value: Any) -> str:
    """Escape any value for HTML text and attribute context; None becomes '-'."""
    return html.escape("-" if value is None else str(value), quote=True)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _spread(row: ClusterRow) -> str:
    if row.largest_subnet_24 is None:
        return f"{row.subnets_24} /24s"
    prefix, senders = row.largest_subnet_24
    return f"{row.subnets_24} /24s; largest {prefix} with {senders}"


def _label_mix(row: ClusterRow) -> str:
    parts = [f"{label} {count.ground_truth}+{count.inferred}" for label, count in row.label_mix.items()]
    if row.unlabelled:
        parts.append(f"unlabelled {row.unlabelled}")
    return ", ".join(parts) or "-"


def _alert_time(alert: dict[str, Any]) -> str:
    value = alert.get("time_ns")
    return _utc(value) if isinstance(value, int) else str(alert.get("time", "-"))


def _utc(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

