"""SIGTERM and SIGINT: a clean stop checkpoints and commits; a second signal exits at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from tests.reliability import harness
from tests.reliability.conftest import Reference

WINDOWS_BEFORE_SIGNAL = 12


def _start_and_wait(reference: Reference, group: str, output: Path, log: Path) -> harness.DaemonProcess:
    daemon = harness.DaemonProcess(reference.argv(group, output), log)
    deadline = time.monotonic() + 60
    while daemon.log_text().count("closed window") < WINDOWS_BEFORE_SIGNAL:
        assert time.monotonic() < deadline, daemon.log_tail()
        assert daemon.process.poll() is None, daemon.log_tail()
        time.sleep(0.05)
    return daemon


@pytest.mark.broker
@pytest.mark.slow
def test_sigterm_checkpoints_commits_and_resumes(reference: Reference, tmp_path: Path) -> None:
    output = tmp_path / "out"
    daemon = _start_and_wait(reference, "sigterm", output, tmp_path / "first.log")
    daemon.signal(signal.SIGTERM)
    code, first_stdout = daemon.finish(60)
    assert code == 0, daemon.log_tail()

    checkpoint = harness.latest_checkpoint(output)
    assert checkpoint is not None
    (topic, partition, offset), = checkpoint.meta["offsets"]
    assert 0 < offset < len(reference.traffic.messages), "the signal did not land mid-stream"
    committed = harness.committed_offsets(reference.bootstrap, "sigterm", topic, [partition])
    assert committed == {partition: offset}

    second_stdout = harness.run_to_end(reference.argv("sigterm", output, *harness.FINITE_RUN), tmp_path / "second.log")
    produced = reference.traffic.records + reference.traffic.malformed
    assert harness.records_read(first_stdout) + harness.records_read(second_stdout) == produced
    assert harness.differences(reference.outcome, harness.read_outcome(output)) == []


@pytest.mark.broker
@pytest.mark.slow
def test_second_sigint_exits_at_once(reference: Reference, kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    output = tmp_path / "out"
    daemon = _start_and_wait(reference, "sigint", output, tmp_path / "daemon.log")
    # With the broker frozen, the final commit after the first signal hangs
    # in its retries: the situation in which an operator presses Ctrl-C again.
    kafka_broker.pause()
    try:
        daemon.signal(signal.SIGINT)
        assert daemon.wait_for_log("signal 2: finishing", 10), daemon.log_tail()
        assert daemon.process.poll() is None, "the first signal did not leave a shutdown in progress"
        daemon.signal(signal.SIGINT)
        started = time.monotonic()
        code = daemon.wait(10)
    finally:
        kafka_broker.resume()
    assert code == 128 + signal.SIGINT, daemon.log_tail()
    assert time.monotonic() - started < 5.0
    assert "second signal 2: exiting at once" in daemon.log_text()
    assert harness.latest_checkpoint(output) is not None
