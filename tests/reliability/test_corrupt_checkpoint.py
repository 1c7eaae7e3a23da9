"""A damaged newest checkpoint is skipped with a warning; the previous one still gives the reference."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.reliability import harness
from tests.reliability.conftest import Reference

WINDOWS_BEFORE_STOP = 15


@pytest.mark.broker
@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back(reference: Reference, tmp_path: Path) -> None:
    output = tmp_path / "out"
    daemon = harness.DaemonProcess(reference.argv("corrupt", output), tmp_path / "first.log")
    deadline = time.monotonic() + 60
    while daemon.log_text().count("closed window") < WINDOWS_BEFORE_STOP:
        assert time.monotonic() < deadline, daemon.log_tail()
        assert daemon.process.poll() is None, daemon.log_tail()
        time.sleep(0.05)
    daemon.signal(signal.SIGTERM)
    assert daemon.finish(60)[0] == 0, daemon.log_tail()

    newest, previous = harness.checkpoints(output)[-1], harness.checkpoints(output)[-2]
    vectors = newest / "embedding" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))

    log = tmp_path / "second.log"
    harness.run_to_end(reference.argv("corrupt", output, *harness.FINITE_RUN), log)
    text = log.read_text()
    assert f"skipping checkpoint {newest.name}" in text
    assert "embedding/vectors.npy" in text
    assert f"restored checkpoint {previous.name}" in text
    assert harness.differences(reference.outcome, harness.read_outcome(output)) == []
