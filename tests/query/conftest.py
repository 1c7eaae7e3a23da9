"""Query API fixtures: one simulated day run through the real daemon, and a server over its checkpoint.

The run uses the simulator's label list as ground truth and a short alert
warm-up, so the state has kNN and ground-truth labels, clusters with
transitions, and alerts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from darkvec_stream.config import load_settings
from darkvec_stream.query.server import QueryServer
from darkvec_stream.query.snapshot import SnapshotPublisher
from darkvec_stream.query.state import AnalystState

CLI = str(Path(sys.executable).with_name("darkvec-stream"))


def run_settings(traffic: Path) -> list[str]:
    """Options shared by every daemon run of these tests (all but the query port)."""
    return [
        "--set", "metrics.enabled=false",
        "--set", "embedding.vector_size=16",
        "--set", "alerts.warmup_windows=3",
        "--set", "labels.sources=[{name: simulated, path: '%s'}]" % (traffic / "labels.csv"),
    ]


@dataclass(frozen=True)
class DaemonRun:
    output: Path
    seconds: float


@pytest.fixture(scope="session")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated day (about 62 k records, 900 senders) in one record-csv file."""
    directory = tmp_path_factory.mktemp("query-traffic")
    subprocess.run([CLI, "simulate", "--days", "1", "--scale", "0.02", "--seed", "3", "--split", "none",
                    "--out", str(directory)], check=True, capture_output=True, timeout=300)
    return directory


@pytest.fixture(scope="session")
def daemon_run(traffic: Path, tmp_path_factory: pytest.TempPathFactory) -> DaemonRun:
    """The daemon's output directory after a run over ``traffic`` without the query API."""
    out = tmp_path_factory.mktemp("query-run") / "out"
    started = time.monotonic()
    completed = subprocess.run(
        [CLI, *run_settings(traffic), "--set", "query.enabled=false",
         "run", "--input", str(traffic / "traffic.csv"), "--output", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return DaemonRun(out, time.monotonic() - started)


@pytest.fixture(scope="session")
def analyst_state(daemon_run: DaemonRun) -> AnalystState:
    return AnalystState.from_checkpoint(load_settings(None), daemon_run.output)


@pytest.fixture(scope="session")
def api_server(analyst_state: AnalystState) -> Iterator[QueryServer]:
    """A query server on 127.0.0.1 (free port) over the run's final state."""
    publisher = SnapshotPublisher()
    state = analyst_state
    publisher.publish(state.embedding, state.history, state.journal, state.labels, state.windows_closed)
    server = QueryServer.for_source(publisher, "127.0.0.1", 0, max_page_size=50, max_neighbours=40).start()
    yield server
    server.stop()
