"""Freeze the broker for 20 s while the daemon consumes, and expect the reference results.

The test broker keeps topics and offsets only in memory, so the outage is a
pause (SIGSTOP, then SIGCONT), not a restart. The daemon must wait the
outage out, lose nothing and process nothing twice. The pause starts after
the first window closes, so it meets the commit of a checkpoint and most of
the stream still unfetched on the broker.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.testing import produce_values
from tests.reliability import harness
from tests.reliability.conftest import Reference

OUTAGE_S = 20.0
# Blank lines, which decoders skip, make each message ~100 KB. The consumer
# fetches at most 1 MiB per partition at a time, so the outage finds most of
# the stream still on the broker instead of already in the client's buffer.
PADDING = b"\n" * 100_000


@pytest.mark.broker
@pytest.mark.slow
def test_broker_outage_loses_nothing(reference: Reference, tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        # The same topic name as the reference, on a broker of its own, so
        # checkpointed offsets compare directly.
        padded = [message + PADDING for message in reference.traffic.messages]
        produce_values(broker.bootstrap_servers, reference.topic, padded, partition=0)
        argv = reference.argv("outage", tmp_path / "out", *harness.FINITE_RUN, bootstrap=broker.bootstrap_servers)
        daemon = harness.DaemonProcess(argv, tmp_path / "outage.log")
        assert daemon.wait_for_log("closed window", 60), daemon.log_tail()

        broker.pause()
        paused_at = time.monotonic()
        time.sleep(OUTAGE_S)
        still_running = daemon.process.poll() is None
        broker.resume()

        code, stdout = daemon.finish(120)
        outage_log = daemon.log_text()

    assert still_running, f"the daemon exited during the outage:\n{outage_log[-4000:]}"
    assert code == 0, outage_log[-4000:]
    assert time.monotonic() - paused_at >= OUTAGE_S
    read = re.search(r"records read (\d+)", stdout)
    assert read is not None, stdout
    produced = reference.traffic.records + reference.traffic.malformed
    assert int(read.group(1)) == produced, "records read differs from records produced"
    outcome = harness.read_outcome(tmp_path / "out")
    assert harness.differences(reference.outcome, outcome) == []
