"""SIGKILL the daemon at random points, restart it, and expect the reference results.

Exactly-once rests on three things this test exercises together: one
checkpoint after every closed window, offsets committed only after it, and
alert and dead-letter files cut back to the checkpoint's sizes on restore.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability import harness
from tests.reliability.conftest import Reference

KILLS = 20
SEED = 2021


@pytest.mark.broker
@pytest.mark.slow
def test_chaos_kills_match_reference(reference: Reference, tmp_path: Path) -> None:
    output = tmp_path / "chaos"
    log = tmp_path / "chaos.log"
    argv = reference.argv("chaos", output, *harness.FINITE_RUN)
    rng = random.Random(SEED)
    killed_mid_stream = 0
    for number in range(KILLS):
        before = _newest_sequence(output)
        daemon = harness.DaemonProcess(argv, log)
        if number % 4 == 0:
            # Every fourth kill lands during start-up: imports, restore, group join.
            time.sleep(rng.uniform(0.2, 2.5))
        else:
            assert daemon.wait_for_log("partitions assigned", 30), daemon.log_tail()
            time.sleep(rng.uniform(0.0, 1.5))
        still_running = daemon.process.poll() is None
        daemon.kill()
        assert still_running, f"run {number} exited before its kill:\n{daemon.log_tail()}"
        if _newest_sequence(output) > before:
            killed_mid_stream += 1

    harness.run_to_end(argv, log)
    chaos = harness.read_outcome(output)

    assert killed_mid_stream >= 5, "too few kills landed after a checkpoint: the stream ended too early"
    assert harness.differences(reference.outcome, chaos) == []
    assert chaos.alerts == reference.outcome.alerts
    assert len(set(chaos.alerts)) == len(chaos.alerts), "an alert line was written twice"
    assert chaos.dead_letters == reference.outcome.dead_letters


def _newest_sequence(output: Path) -> int:
    paths = harness.checkpoints(output)
    return int(paths[-1].name.split("-")[1]) if paths else 0
