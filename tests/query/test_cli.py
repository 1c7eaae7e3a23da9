"""Command-line equivalents: 'query IP' over the API or a checkpoint, and 'clusters --api'."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from darkvec_stream.cli import main
from darkvec_stream.query.server import QueryServer
from darkvec_stream.query.state import AnalystState
from tests.query.client import get
from tests.query.conftest import DaemonRun

pytestmark = pytest.mark.slow


def knn_sender(state: AnalystState) -> str:
    return sorted(s for s, v in state.labels.items() if v.source == "knn" and v.label)[0]


def test_query_state_json_equals_api(api_server: QueryServer, daemon_run: DaemonRun, analyst_state: AnalystState,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    sender = knn_sender(analyst_state)
    assert main(["query", sender, "--state", str(daemon_run.output), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, served, _ = get(f"{api_server.url}/senders/{sender}")
    assert printed == served


def test_query_api_text(api_server: QueryServer, analyst_state: AnalystState,
                        capsys: pytest.CaptureFixture[str]) -> None:
    sender = knn_sender(analyst_state)
    label = analyst_state.labels[sender]
    assert main(["query", sender, "--api", api_server.url, "--neighbours", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"sender    {sender}"
    assert lines[1] == f"label     {label.label} (kNN vote, confidence {label.confidence:.2f})"
    assert lines[2].startswith("evidence  ")
    cluster_id = analyst_state.journal.sender_cluster[sender][0]
    assert any(line.startswith(f"cluster   {cluster_id} ") for line in lines)
    activity = next(line for line in lines if line.startswith("activity  |"))
    assert len(activity.split("|")[1]) == len(analyst_state.history.windows)
    assert lines[-4] == "neighbours"
    assert all(line.startswith("          ") for line in lines[-3:])


@pytest.mark.parametrize("address, message", [
    ("1.2.3.256", "not an IPv4 or IPv6 address"),
    ("192.0.2.250", "192.0.2.250 is not in the model"),
])
def test_query_errors_are_one_line(api_server: QueryServer, daemon_run: DaemonRun, address: str, message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    for source in (["--api", api_server.url], ["--state", str(daemon_run.output)]):
        assert main(["query", address, *source]) == 1
        error = capsys.readouterr().err.strip()
        assert error.startswith("darkvec-stream: error: ")
        assert message in error
        assert "\n" not in error


def test_query_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["query", "192.0.2.1", "--api", f"http://127.0.0.1:{port}"]) == 1
    assert "is not reachable" in capsys.readouterr().err


def test_query_rejects_other_schemes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "192.0.2.1", "--api", "file:///etc/passwd"]) == 1
    assert "is not an http:// or https:// URL" in capsys.readouterr().err


def test_clusters_api_lists_live_clusters(api_server: QueryServer, analyst_state: AnalystState, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clusters", "--api", api_server.url, "--out", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    profiles = analyst_state.journal.profiles
    listed = [row.split()[0] for row in rows[1:-1]]
    assert sorted(listed) == sorted(profiles)
    sizes = [int(row.split()[1]) for row in rows[1:-1]]
    assert sizes == sorted(sizes, reverse=True)
    written = json.loads((tmp_path / "clusters.json").read_text())
    assert {item["id"] for item in written["clusters"]} == set(profiles)


def test_clusters_needs_out_or_api(daemon_run: DaemonRun, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clusters", "--state", str(daemon_run.output)]) == 1
    assert "--out DIR is required" in capsys.readouterr().err
