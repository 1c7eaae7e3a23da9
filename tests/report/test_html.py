"""The page: strings from data escaped, nothing loaded from elsewhere, and the JSON tables beside it."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.query.state import AnalystState
from darkvec_stream.report import ReportOptions, build_report, report_json, write_report
from darkvec_stream.report.tables import cluster_rows
from tests.report.conftest import (
    HOSTILE_CLUSTER,
    HOSTILE_LABEL,
    HOSTILE_SENDERS,
    HOSTILE_SUMMARY,
    TELNET_CLUSTER,
)

FIXED_TIME = datetime(2021, 3, 2, 12, 0, tzinfo=timezone.utc)


def _page(state: AnalystState, tmp_path: Path, **options: object) -> tuple[str, dict]:
    content = build_report(state, KnnLabeller(k=1, min_similarity=-1.0, min_margin=0.0),
                           ReportOptions(**options), now=lambda: FIXED_TIME)  # type: ignore[arg-type]
    html_path, json_path = write_report(content, tmp_path)
    return html_path.read_text(encoding="utf-8"), json.loads(json_path.read_text(encoding="utf-8"))


def test_hostile_strings_are_escaped(hand_state: AnalystState, tmp_path: Path) -> None:
    page, _ = _page(hand_state, tmp_path, title="<script>alert('title')</script>")
    assert "<script" not in page.lower()
    assert "onerror=alert(1)>" not in page
    for text in (HOSTILE_LABEL, HOSTILE_SUMMARY, HOSTILE_CLUSTER, "<script>alert('title')</script>"):
        assert html.escape(text, quote=True) in page


def test_hostile_sender_in_alert_table_is_escaped(hand_state: AnalystState, tmp_path: Path) -> None:
    page, _ = _page(hand_state, tmp_path)
    assert f"<td>{html.escape(HOSTILE_SENDERS[0], quote=True)}</td>" in page


def test_page_loads_nothing_from_elsewhere(hand_state: AnalystState, tmp_path: Path) -> None:
    page, _ = _page(hand_state, tmp_path)
    assert "default-src 'none'; img-src data:" in page
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r'href="(?!#)', page), "only in-page links"
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page


def test_images_decode_at_declared_size(hand_state: AnalystState, tmp_path: Path) -> None:
    page, _ = _page(hand_state, tmp_path)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', page)
    # Two per cluster, the embedding map and the alert timeline.
    assert len(images) == 2 * 2 + 2
    for data, width, height in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (int(width), int(height))


def test_cluster_bound_limits_plots_not_table(hand_state: AnalystState, tmp_path: Path) -> None:
    page, document = _page(hand_state, tmp_path, clusters=1)
    assert [item["cluster_id"] for item in document["plotted_clusters"]] == [TELNET_CLUSTER]
    assert len(document["clusters"]) == 2
    assert page.count('<section id="cluster-') == 1
    assert f'<a href="#cluster-1">{TELNET_CLUSTER}</a>' in page


def test_senders_per_cluster_bound(hand_state: AnalystState, tmp_path: Path) -> None:
    _, document = _page(hand_state, tmp_path, senders_per_cluster=2)
    assert [item["sampled_senders"] for item in document["plotted_clusters"]] == [2, 2]


def test_json_holds_the_tables(hand_state: AnalystState, tmp_path: Path) -> None:
    _, document = _page(hand_state, tmp_path)
    assert document["format"] == "darkvec-stream.report/1"
    assert document["generated_at"] == "2021-03-02 12:00:00 UTC"
    assert document["clusters"] == [row.to_json() for row in cluster_rows(hand_state)]
    assert document["alerts"]["total"] == 2
    assert document["alerts"]["by_type"] == {"new_cluster": 1, "label_change": 1}
    assert document["state"]["senders_clustered"] == 7
    assert document["evaluation"]["report"] is not None


def test_empty_state_gives_a_page(tmp_path: Path) -> None:
    from darkvec_stream.embedding import SenderEmbedding
    from darkvec_stream.query.history import SenderHistory
    from darkvec_stream.query.journal import ClusterJournal

    state = AnalystState(SenderEmbedding(), SenderHistory(), ClusterJournal(), {}, windows_closed=0)
    content = build_report(state, KnnLabeller())
    assert report_json(content)["clusters"] == []
    page, _ = _page(state, tmp_path)
    assert "No clustering run in this state yet." in page
    assert "No alert in the journal." in page
    assert "<img" not in page
