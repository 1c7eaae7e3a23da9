"""Fixtures of the report tests: a hand-built state with known numbers and hostile names, and a real run.

The hand-built state goes through the real ``SenderHistory``,
``SenderEmbedding`` and ``ClusterJournal``. Only the clustering run and the
labels are set by hand, so every table value can be computed on paper. The
real run is ``darkvec-stream simulate`` then ``run --input`` on one small
simulated day, shared by the whole session because it takes about 10 s.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from darkvec_stream.config import load_settings
from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.query.history import SenderHistory
from darkvec_stream.query.journal import ClusterJournal
from darkvec_stream.query.state import AnalystState, SenderLabelView
from darkvec_stream.windows.model import ClosedWindow, Sentence, SenderActivity

CLI = str(Path(sys.executable).with_name("darkvec-stream"))
NS_PER_HOUR = 3_600_000_000_000
FIRST_WINDOW = 448_000

TELNET_CLUSTER = "C000001"
TELNET_SENDERS = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.4")
HOSTILE_CLUSTER = "C<script>alert('cluster')</script>"
HOSTILE_SENDERS = ("<img src=x onerror=alert(1)>", "</td><script>alert('sender')</script>", "$\\frac{1}{0}$ sender")
HOSTILE_LABEL = "<script>alert('label')</script>"
MATHTEXT_LABEL = "$\\frac{1}{0}$"
HOSTILE_SUMMARY = "<script>alert('summary')</script> & more"


@dataclass(frozen=True)
class RunOutput:
    """A finished daemon run on simulated traffic."""

    output: Path
    labels: Path


def _window(index: int, activity: dict[str, SenderActivity]) -> ClosedWindow:
    start_ns = index * NS_PER_HOUR
    senders = tuple(sorted(activity))
    # Each sender twice, interleaved, so that Word2Vec has context to learn from.
    sentence = Sentence("telnet", senders + senders)
    packets = sum(item.packets for item in activity.values())
    return ClosedWindow(index, start_ns, start_ns + NS_PER_HOUR, (sentence,), activity, packets, len(activity), 0)


def _telnet_activity(index: int, sender: str) -> SenderActivity:
    start_ns = index * NS_PER_HOUR
    mirai = 15 if sender == "10.0.0.1" else 0
    return SenderActivity(15, start_ns + 60_000_000_000, start_ns + 120_000_000_000, {23: 10, 2323: 5}, {"telnet"}, mirai)


def _hostile_activity(index: int) -> SenderActivity:
    start_ns = index * NS_PER_HOUR
    return SenderActivity(4, start_ns + 1, start_ns + 2, {445: 3, 80: 1}, {"smb"}, 0)


def build_hand_state() -> AnalystState:
    """Four windows: the telnet cluster active in the first two, the hostile cluster in the last two."""
    history = SenderHistory(max_windows=24, max_ports=16)
    embedding = SenderEmbedding(vector_size=8, context=2, epochs_per_window=2, seed=1, expiry_s=10 * 86400)
    for offset in range(4):
        index = FIRST_WINDOW + offset
        if offset < 2:
            activity = {sender: _telnet_activity(index, sender) for sender in TELNET_SENDERS}
        else:
            activity = {sender: _hostile_activity(index) for sender in HOSTILE_SENDERS}
        window = _window(index, activity)
        history.observe(window)
        embedding.update(window)

    journal = ClusterJournal()
    journal.window_index = FIRST_WINDOW + 3
    silhouettes = (0.5, 0.7, None, 0.9)
    journal.sender_cluster = {sender: (TELNET_CLUSTER, value) for sender, value in zip(TELNET_SENDERS, silhouettes)}
    journal.sender_cluster.update({sender: (HOSTILE_CLUSTER, 0.25) for sender in HOSTILE_SENDERS})
    journal.alerts.append({
        "type": "new_cluster", "severity": "high", "time_ns": (FIRST_WINDOW + 3) * NS_PER_HOUR,
        "cluster_id": HOSTILE_CLUSTER, "sender": HOSTILE_SENDERS[0], "summary": HOSTILE_SUMMARY,
    })
    journal.alerts.append({"type": "label_change", "severity": "low", "time_ns": "not a time", "summary": "skipped"})

    labels = {
        "10.0.0.1": SenderLabelView("mirai", 1.0, "mirai-fingerprint"),
        "10.0.0.2": SenderLabelView("mirai", 0.8, "knn"),
        "10.0.0.3": SenderLabelView(None, 0.0, "knn"),
        HOSTILE_SENDERS[0]: SenderLabelView(HOSTILE_LABEL, 1.0, "operator-list"),
        HOSTILE_SENDERS[1]: SenderLabelView(MATHTEXT_LABEL, 1.0, "operator-list"),
    }
    return AnalystState(embedding, history, journal, labels, windows_closed=4)


@pytest.fixture
def hand_state() -> AnalystState:
    return build_hand_state()


@pytest.fixture(scope="session")
def simulated_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    """One simulated day (about 900 senders, 45 on the operator's list) through the real daemon."""
    root = tmp_path_factory.mktemp("report-run")
    traffic = root / "traffic"
    subprocess.run([CLI, "simulate", "--days", "1", "--scale", "0.02", "--seed", "3", "--split", "none",
                    "--out", str(traffic)], check=True, capture_output=True, timeout=300)
    capture = next(traffic.glob("traffic*"))
    labels = traffic / "labels.csv"
    output = root / "out"
    completed = subprocess.run(
        [CLI, "--set", "metrics.enabled=false", "--set", "query.enabled=false", "--set", "embedding.vector_size=16",
         "--set", f"labels.sources=[{{name: operator-list, path: '{labels}'}}]",
         "run", "--input", str(capture), "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return RunOutput(output, labels)


@pytest.fixture(scope="session")
def simulated_state(simulated_run: RunOutput) -> AnalystState:
    return AnalystState.from_checkpoint(load_settings(None), simulated_run.output)


@pytest.fixture(scope="session")
def simulated_report(simulated_run: RunOutput, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report command run once on the simulated state: its output directory and what it printed."""
    out = tmp_path_factory.mktemp("report-out") / "report"
    completed = subprocess.run(
        [CLI, "report", "--state", str(simulated_run.output), "--out", str(out), "--clusters", "4",
         "--senders-per-cluster", "60", "--title", "Simulated <day> & report"],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return out, completed.stdout
