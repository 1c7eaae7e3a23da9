"""AnalystState from a real run: history, journal and labels agree with the pipeline's own files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from darkvec_stream.alerts.formats.jsonl import alert_from_dict
from darkvec_stream.config import load_settings
from darkvec_stream.errors import StateError
from darkvec_stream.query.state import AnalystState

CLI = str(Path(sys.executable).with_name("darkvec-stream"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("query-state")
    traffic = root / "traffic"
    subprocess.run([CLI, "simulate", "--days", "1", "--scale", "0.02", "--seed", "3", "--split", "none",
                    "--out", str(traffic)], check=True, capture_output=True, timeout=300)
    capture = next(traffic.glob("traffic*"))
    out = root / "out"
    completed = subprocess.run(
        [CLI, "--set", "metrics.enabled=false", "--set", "query.enabled=false", "--set", "embedding.vector_size=16",
         "run", "--input", str(capture), "--output", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return out


def test_state_loads_from_the_output_directory(run_output: Path) -> None:
    state = AnalystState.from_checkpoint(load_settings(None), run_output)
    assert state.windows_closed >= 20
    assert len(state.history) == len(state.embedding)
    assert set(state.history.senders()) == set(state.embedding.keys())
    assert len(state.history.windows) == state.windows_closed
    sender = state.history.senders()[0]
    summary = state.history.get(sender)
    assert summary is not None and summary.packets >= summary.windows_active >= 1


def test_journal_members_match_profiles(run_output: Path) -> None:
    state = AnalystState.from_checkpoint(load_settings(None), run_output)
    journal = state.journal
    assert journal.profiles, "a day of traffic gives clusters"
    for cluster_id, profile in journal.profiles.items():
        assert len(journal.members(cluster_id)) == profile["size"]
    assert any(entries for entries in journal.transitions.values())


def test_journal_alerts_are_the_alerts_file(run_output: Path) -> None:
    state = AnalystState.from_checkpoint(load_settings(None), run_output)
    path = run_output / "alerts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    written = [json.loads(line) for line in lines if line]
    assert [alert["alert_id"] for alert in state.journal.alerts] == [alert["alert_id"] for alert in written]
    for alert in state.journal.alerts:
        alert_from_dict(alert)


def test_a_directory_without_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no pipeline checkpoint"):
        AnalystState.from_checkpoint(load_settings(None), tmp_path)
