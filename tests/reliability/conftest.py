"""Fixtures shared by the reliability tests: one seeded stream and its reference run.

The reference is an uninterrupted ``darkvec-stream run`` over the whole
stream. The chaos, shutdown, outage and corrupt-checkpoint tests must end
with exactly the same alerts, dead letters and checkpointed state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.testing import produce_values
from tests.reliability import harness

STREAM_MINUTES = 45
STREAM_SCALE = 0.1
STREAM_SEED = 7


@dataclass(frozen=True)
class Reference:
    """The stream on the session broker and the outcome of one uninterrupted run."""

    bootstrap: str
    topic: str
    traffic: harness.Traffic
    config: Path
    outcome: harness.Outcome
    stdout: str

    def argv(self, group: str, output: Path, *extra: str, bootstrap: str | None = None) -> list[str]:
        return harness.daemon_argv(self.config, bootstrap or self.bootstrap, self.topic, group, output, *extra)


@pytest.fixture(scope="session")
def reference(kafka_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("reliability")
    traffic = harness.make_traffic(root / "traffic", STREAM_MINUTES, STREAM_SCALE, STREAM_SEED)
    topic = f"reliability-{uuid.uuid4().hex[:8]}"
    produce_values(kafka_broker.bootstrap_servers, topic, traffic.messages, partition=0)
    config = harness.write_config(root / "config.yaml", traffic)
    output = root / "reference"
    argv = harness.daemon_argv(
        config, kafka_broker.bootstrap_servers, topic, "reference", output, *harness.FINITE_RUN
    )
    stdout = harness.run_to_end(argv, root / "reference.log")
    return Reference(kafka_broker.bootstrap_servers, topic, traffic, config, harness.read_outcome(output), stdout)
