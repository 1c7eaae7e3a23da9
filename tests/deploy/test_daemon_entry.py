"""The compose daemon's command line and environment run outside Docker and export what dashboards read.

The command, the environment and the mounted configuration file come from the
``daemon`` service of deploy/docker-compose.yml. Only the addresses change: the
session's test broker instead of Apache Kafka, 127.0.0.1 and a free port instead
of 0.0.0.0:9108, and a fresh topic, group and output directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.broker import free_port
from darkvec_stream.kafka.testing import produce_values
from darkvec_stream.simulate import SimulationConfig, simulate_messages
from tests.deploy.conftest import VALIDATE_PATH

DEPLOY = VALIDATE_PATH.parent
DAEMON = Path(sys.executable).with_name("darkvec-stream")
MALFORMED = b"not,a,record"


def compose_daemon(validate: ModuleType) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Return the daemon service's argv (container paths mapped to deploy/), environment and healthcheck."""
    service = validate.load_compose()["services"]["daemon"]
    mounts = {}
    for volume in service["volumes"]:
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            mounts[target] = str(DEPLOY / source[2:])
    argv = [str(DAEMON)] + [mounts.get(word, word) for word in service["command"]]
    environment = {key: str(value) for key, value in service["environment"].items()}
    return argv, environment, service["healthcheck"]


def traffic_messages(hours: float) -> list[bytes]:
    """Seeded traffic spanning ``hours`` of event time, one malformed line in the first message."""
    messages = list(simulate_messages(SimulationConfig(days=hours / 24, scale=0.02, seed=4), records_per_message=500))
    messages[0] += b"\n" + MALFORMED
    return messages


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def wait_for(predicate: Any, timeout_s: float, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if predicate():
            return True
        time.sleep(0.5)
    return False


def windows_closed(base: str) -> float:
    _, body = get(base + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("darkvec_windows_closed_total "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.broker
@pytest.mark.slow
def test_compose_daemon_exports_dashboard_metrics(
    validate: ModuleType, kafka_broker: EmbeddedBroker, unique_topic: str, tmp_path: Path
) -> None:
    argv, environment, healthcheck = compose_daemon(validate)
    assert argv[-1] == "run"
    assert environment["DARKVEC_STREAM_METRICS__HOST"] == "0.0.0.0"
    port = free_port()
    environment.update({
        "DARKVEC_STREAM_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "DARKVEC_STREAM_KAFKA__TOPIC": unique_topic,
        "DARKVEC_STREAM_KAFKA__GROUP_ID": unique_topic,
        "DARKVEC_STREAM_METRICS__HOST": "127.0.0.1",
        "DARKVEC_STREAM_METRICS__PORT": str(port),
        "DARKVEC_STREAM_QUERY__HOST": "127.0.0.1",
        "DARKVEC_STREAM_QUERY__PORT": "0",
        "DARKVEC_STREAM_OUTPUT__DIRECTORY": str(tmp_path / "state"),
    })
    # Two hours of event time close the first hourly window of config.production.yaml.
    produce_values(kafka_broker.bootstrap_servers, unique_topic, traffic_messages(hours=2.0))

    log_path = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env={"PATH": os.environ.get("PATH", ""), **environment},
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: get(base + "/healthz")[0] == 200, 60, process), log_path.read_text()[-3000:]
            assert wait_for(lambda: windows_closed(base) >= 1, 90, process), log_path.read_text()[-3000:]

            # The compose healthcheck command itself, pointed at this port.
            command = [word.replace(":9108/", f":{port}/") for word in healthcheck["test"][1:]]
            assert subprocess.run(command, timeout=30).returncode == 0

            status, body = get(base + "/metrics")
            assert status == 200
            exposed = validate.registry_names() & validate.exposed_names(body.decode())
            dashboard = json.loads((DEPLOY / "grafana" / "darkvec-stream-dashboard.json").read_text())
            expressions = validate.dashboard_expressions(dashboard) + validate.rule_expressions()
            assert validate.unknown_metrics(expressions, validate.exposed_names(body.decode())) == {}
            assert 'darkvec_records_rejected_total{reason="malformed"} 1.0' in body.decode()
            assert "darkvec_last_window_close_timestamp_seconds" in exposed
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=120)
    assert code == 0, log_path.read_text()[-3000:]
    assert any(line.startswith("{") for line in log_path.read_text().splitlines()), "logs are not JSON"
