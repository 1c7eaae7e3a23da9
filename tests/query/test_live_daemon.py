"""The running daemon serves queries while windows keep closing, and the load does not change its results."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from darkvec_stream.config import load_settings
from darkvec_stream.daemon import Daemon
from darkvec_stream.query.state import AnalystState
from tests.query.client import get
from tests.query.conftest import CLI, DaemonRun, run_settings

pytestmark = pytest.mark.slow

ADDRESS = re.compile(r"query API on (http://127\.0\.0\.1:\d+)/")
CLIENT_THREADS = 6


class Load:
    """Client threads that query the daemon until it exits, recording what they see."""

    def __init__(self, base: str, sender: str) -> None:
        self.targets = ["/healthz", f"/senders/{sender}", f"/senders/{sender}/neighbours?k=20", "/clusters?limit=20",
                        "/alerts?limit=20"]
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.windows_seen: set[int] = set()
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        position = 0
        while not self.stop.is_set():
            target = self.targets[position % len(self.targets)]
            position += 1
            try:
                status, body, _ = get(self.base + target)
            except OSError:
                continue  # the daemon has shut its server down
            with self._lock:
                self.statuses[status] += 1
                if status >= 400:
                    # /healthz replies 503 with its own body before the first window.
                    self.errors[body.get("error") or body["status"]] += 1
                elif target == "/healthz":
                    self.windows_seen.add(body["windows_closed"])


def test_queries_during_a_run(traffic: Path, daemon_run: DaemonRun, analyst_state: AnalystState,
                              tmp_path: Path) -> None:
    sender = sorted(s for s, v in analyst_state.labels.items() if v.source == "knn" and v.label)[0]
    out = tmp_path / "out"
    started = time.monotonic()
    process = subprocess.Popen(
        [CLI, *run_settings(traffic), "--set", "query.port=0",
         "run", "--input", str(traffic / "traffic.csv"), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = None
        assert process.stderr is not None
        for line in process.stderr:
            match = ADDRESS.search(line)
            if match:
                base = match.group(1)
                break
        assert base is not None, "the daemon logs the query API address"
        load = Load(base, sender)
        threads = [threading.Thread(target=load.run) for _ in range(CLIENT_THREADS)]
        for thread in threads:
            thread.start()
        stderr = process.stderr.read()
        returncode = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    seconds = time.monotonic() - started
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    assert returncode == 0, stderr[-2000:]
    assert load.statuses[200] >= 200, load.statuses
    assert set(load.statuses) <= {200, 404, 503}, load.statuses
    assert set(load.errors) <= {"not_found", "not_ready", "starting", "busy"}, load.errors
    assert len(load.windows_seen) >= 5, f"answers came from only {sorted(load.windows_seen)} windows"
    # On 2 shared cores the clients and the daemon compete for CPU, so the
    # bound is loose: it catches a pipeline stalled behind requests, not jitter.
    assert seconds < 5 * daemon_run.seconds + 20, (seconds, daemon_run.seconds)
    assert (out / "alerts.jsonl").read_bytes() == (daemon_run.output / "alerts.jsonl").read_bytes()
    loaded = AnalystState.from_checkpoint(load_settings(None), out)
    assert loaded.labels == analyst_state.labels


@pytest.mark.broker
def test_restored_state_is_served_before_new_records(kafka_broker, unique_topic: str, traffic: Path,  # type: ignore[no-untyped-def]
                                                     daemon_run: DaemonRun, tmp_path: Path) -> None:
    out = tmp_path / "restored"
    subprocess.run(["cp", "-r", str(daemon_run.output), str(out)], check=True)
    settings = load_settings(None, overrides=[
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"kafka.topic={unique_topic}",
        f"kafka.group_id={unique_topic}", f"output.directory={out}", "query.port=0",
        *run_settings(traffic)[1::2],
    ])
    daemon = Daemon(settings)
    runner = threading.Thread(target=daemon.run_kafka, kwargs={"exit_when_idle_s": 60.0})
    runner.start()
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            server = daemon.query_server
            if server is not None:
                status, body, _ = get(server.url + "/healthz")
                if status == 200:
                    break
            time.sleep(0.1)
        assert body is not None and body["status"] == "ok"
        checkpoint = json.loads(sorted((out / "checkpoints").glob("ckpt-*/pipeline.json"))[-1].read_text())
        assert body["windows_closed"] == checkpoint["windows_closed"]
        assert body["senders"] > 0
        assert daemon.summary.windows == [], "served before any new window"
    finally:
        daemon.stop.set()
        runner.join(timeout=60)
    assert not runner.is_alive()
