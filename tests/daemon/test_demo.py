"""The demo end to end through the installed command: broker, replay, daemon, report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("darkvec-stream"))


@pytest.mark.broker
@pytest.mark.slow
def test_demo_prints_summary(tmp_path):
    out = tmp_path / "demo"
    completed = subprocess.run(
        [CLI, "--log-level", "WARNING", "demo", "--days", "0.5", "--scale", "0.01", "--seed", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = completed.stdout
    assert "windows processed: 12;" in report
    assert "leave-one-out evaluation against the simulator's truth" in report
    assert "clusters after window" in report
    assert "alerts raised:" in report
    assert (out / "simulation" / "senders.csv").is_file()
    checkpoints = sorted((out / "run" / "checkpoints").glob("ckpt-*"))
    assert checkpoints, "the daemon wrote no checkpoint"
    state = json.loads((checkpoints[-1] / "pipeline.json").read_text())
    assert state["windows_closed"] == 12


def test_demo_refuses_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    completed = subprocess.run([CLI, "demo", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1
    assert "not empty and was not written by the demo" in completed.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
