"""The installed ``darkvec-stream`` command: ``broker`` and ``replay`` end to end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from darkvec_stream.ingest.record import Record
from darkvec_stream.ingest.wire import write_file
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.broker import probe_metadata
from darkvec_stream.kafka.testing import KafkaIO

# Each command start imports the whole package, about 5 s on a busy 2-core machine.
pytestmark = [pytest.mark.broker, pytest.mark.slow]

NS = 1_000_000_000


def _command() -> list[str]:
    installed = Path(sys.executable).with_name("darkvec-stream")
    if installed.exists():
        return [str(installed)]
    found = shutil.which("darkvec-stream")
    if found is None:
        pytest.fail("the darkvec-stream entry point is not installed: run `pip install -e .`")
    return [found]


def test_broker_command_prints_address_and_stops() -> None:
    process = subprocess.Popen(
        [*_command(), "broker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("bootstrap servers: 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert probe_metadata("127.0.0.1", port) == [("127.0.0.1", port)]

        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0
    assert "broker stopped" in stderr


def test_broker_command_rejects_public_host() -> None:
    result = subprocess.run([*_command(), "broker", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_replay_command_sends_and_summarises(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, tmp_path: Path
) -> None:
    path = tmp_path / "records.csv"
    write_file(path, [Record(ts_ns=(1_700_000_000 + second) * NS, src=f"10.0.0.{second}") for second in range(25)])
    environment = {**os.environ, "NO_COLOR": "1"}

    result = subprocess.run(
        [*_command(), "replay", str(path), "--topic", unique_topic, "--format", "record-csv",
         "--batch-records", "10", "--bootstrap-servers", kafka_broker.bootstrap_servers, "--no-progress"],
        capture_output=True, text=True, timeout=120, env=environment,
    )

    assert result.returncode == 0, result.stderr
    assert "records sent: 25 in 3 messages" in result.stdout
    assert "rejects: 0 (none)" in result.stdout
    assert "event time: 2023-11-14T22:13:20Z .. 2023-11-14T22:13:44Z (24.0 s)" in result.stdout
    assert len(kafka_io.consume(unique_topic, 3)) == 3


def test_replay_command_bad_option(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    write_file(path, [Record(ts_ns=NS, src="10.0.0.1")])

    result = subprocess.run(
        [*_command(), "replay", str(path), "--option", "preset", "--bootstrap-servers", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 2
    assert "--option 'preset' is invalid: use KEY=VALUE" in result.stderr
