"""``darkvec-stream report`` end to end on a simulated day run through the real daemon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from darkvec_stream.cli import main
from darkvec_stream.commands.report import MARKER
from darkvec_stream.query.state import AnalystState
from tests.report.conftest import CLI, RunOutput

pytestmark = pytest.mark.slow


def _report(state: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "report", "--state", str(state), "--out", str(out), *options],
                          capture_output=True, text=True, timeout=300)


def test_report_files_and_output(simulated_report: tuple[Path, str]) -> None:
    out, printed = simulated_report
    assert (out / "report.html").is_file()
    assert (out / "report.json").is_file()
    assert (out / MARKER).is_file()
    assert f"report: {(out / 'report.html').resolve()}" in printed


def test_report_tables_match_the_state(simulated_report: tuple[Path, str], simulated_state: AnalystState) -> None:
    out, printed = simulated_report
    document = json.loads((out / "report.json").read_text())
    journal = simulated_state.journal
    cluster_ids = {cluster_id for cluster_id, _ in journal.sender_cluster.values()}
    assert {row["cluster_id"] for row in document["clusters"]} == cluster_ids
    for row in document["clusters"]:
        assert row["senders"] == len(journal.members(row["cluster_id"]))
    assert len(document["plotted_clusters"]) == min(4, len(cluster_ids))
    assert all(item["sampled_senders"] <= 60 for item in document["plotted_clusters"])
    assert document["alerts"]["total"] == len(journal.alerts)
    assert document["evaluation"]["report"]["labelled"] > 0
    assert f"{len(cluster_ids)} clusters (" in printed


def test_report_page_has_every_section(simulated_report: tuple[Path, str]) -> None:
    page = (simulated_report[0] / "report.html").read_text()
    for heading in ("<h2>Clusters</h2>", "<h2>Activity patterns and ports per cluster</h2>",
                    "<h2>Embedding map</h2>", "<h2>Label evaluation (leave-one-out kNN)</h2>", "<h2>Alerts</h2>"):
        assert heading in page
    assert "<title>Simulated &lt;day&gt; &amp; report</title>" in page
    assert page.count("<img ") >= 2 * 4 + 1


def _report_here(state: Path, out: Path, *options: str) -> int:
    # In-process, for the cases that do not need a fresh interpreter: it skips
    # the seconds of importing gensim, faiss and matplotlib again.
    return main(["report", "--state", str(state), "--out", str(out), *options])


def test_rerun_replaces_its_own_report(simulated_run: RunOutput, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert _report_here(simulated_run.output, out, "--clusters", "1", "--senders-per-cluster", "10") == 0
    assert _report_here(simulated_run.output, out, "--clusters", "2", "--senders-per-cluster", "10") == 0
    assert len(json.loads((out / "report.json").read_text())["plotted_clusters"]) == 2


def test_foreign_directory_is_rejected(
    simulated_run: RunOutput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert _report_here(simulated_run.output, tmp_path) == 1
    assert "is not empty and contains no earlier report" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_missing_state_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert _report_here(tmp_path, out) == 1
    assert "holds no pipeline checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_invalid_bound_is_a_usage_error(
    simulated_run: RunOutput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _report_here(simulated_run.output, tmp_path / "report", "--clusters", "0") == 2
    assert "report option clusters 0 is invalid" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
