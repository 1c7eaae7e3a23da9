"""One worker, two workers, and two workers with one killed mid-window give the same results.

Each case reads the same seeded stream, partitioned by service over the 4
partitions of a fresh topic, through ``darkvec-stream worker`` processes
and one ``darkvec-stream trainer``. The trainer's sentence dumps, alert
lines, sender labels and model files must be identical across the cases,
and equal to a single ``darkvec-stream run`` over the unpartitioned stream.
Only offsets and the count of late records differ legitimately between
runs, and neither is compared.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.record import Origin
from darkvec_stream.kafka.testing import produce_values
from darkvec_stream.scaleout.router import routed_messages
from darkvec_stream.scaleout.routing import ServiceRouter
from darkvec_stream.windows import DomainServices
from tests.reliability import harness

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 4
WORKER_EXIT = ("--exit-when-idle", "6", "--flush-at-exit")


def _by_service(bootstrap, topic, messages, pause_s=0.0, repeat_tail=0):
    """Send raw messages partitioned by service, headed by their source position like the router does.

    ``repeat_tail`` sends that many earlier messages again, as a router that
    crashed before its commit would.
    """
    decoder = get_decoder("record-csv")
    router = ServiceRouter(DomainServices(), PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                             max_in_flight_requests_per_connection=1)
    try:
        assert len(producer.partitions_for(topic)) == PARTITIONS
        order = list(range(len(messages)))
        if repeat_tail:
            middle = 2 * len(order) // 3
            order = order[:middle] + order[middle - repeat_tail:middle] + order[middle:]
        for number in order:
            records, _ = decoder.decode_message(messages[number], Origin("raw", 0, number))
            for partition, payload in routed_messages(f"raw:0:{number}", router.split(records), 900_000):
                producer.send(topic, value=payload, partition=partition)
            if pause_s:
                producer.flush()
                time.sleep(pause_s)
        producer.flush()
    finally:
        producer.close(timeout=5)


class Deployment:
    """The topics, config and processes of one scale-out case."""

    def __init__(self, root: Path, bootstrap: str, config: Path, name: str) -> None:
        self.root = root / name
        self.bootstrap = bootstrap
        self.config = config
        suffix = uuid.uuid4().hex[:8]
        self.records_topic = f"by-service-{name}-{suffix}"
        self.sentences_topic = f"sentences-{name}-{suffix}"
        self.output = self.root / "trainer"
        self.dump = self.root / "sentences"

    def _argv(self, command: str, *extra: str) -> list[str]:
        return [
            str(harness.DAEMON), "--config", str(self.config),
            "--set", f"kafka.bootstrap_servers={self.bootstrap}",
            command, "--records-topic", self.records_topic, "--sentences-topic", self.sentences_topic,
            "--group-id", f"{command}-{self.records_topic}", *extra,
        ]

    def worker(self, number: int) -> harness.DaemonProcess:
        argv = self._argv("worker", "--output", str(self.root / f"worker{number}"), *WORKER_EXIT)
        return harness.DaemonProcess(argv, self.root / f"worker{number}.log")

    def trainer(self) -> harness.DaemonProcess:
        argv = self._argv("trainer", "--output", str(self.output), "--dump-sentences", str(self.dump),
                          "--idle-timeout", "40", "--exit-at-end")
        return harness.DaemonProcess(argv, self.root / "trainer.log")


def _history_without_set_order(data: bytes) -> object:
    # The query history lists each sender's services in the iteration order
    # of a Python set, which depends on the per-process string hash seed, so
    # only the contents of those lists are compared.
    document = json.loads(data)
    for _, summary in document["senders"]:
        summary["services"] = sorted(summary["services"])
        summary["ports"] = sorted(summary["ports"])
    return document


def _result(output: Path, dump: Path) -> dict[str, object]:
    outcome = harness.read_outcome(output)
    stage_files: dict[str, object] = {
        name: data for name, data in outcome.stage_files.items() if not name.startswith("scaleout/")
    }
    if "history/history.json" in stage_files:
        stage_files["history/history.json"] = _history_without_set_order(outcome.stage_files["history/history.json"])
    return {
        "sentences": {path.name: path.read_text() for path in sorted(dump.glob("*.txt"))},
        "alerts": outcome.alerts,
        "labels": outcome.pipeline_state["sender_labels"],
        "windows_closed": outcome.windows_closed,
        "stage_files": stage_files,
    }


def _finish(process: harness.DaemonProcess, what: str) -> str:
    code, stdout = process.finish(120)
    assert code == 0, f"{what} exited with {code}:\n{process.log_tail()}"
    process.stdout_text = stdout
    return stdout


def _query_trainer(trainer: harness.DaemonProcess) -> dict[str, object]:
    """Ask the running trainer's query API for its health and the senders it holds."""
    assert trainer.wait_for_log("query API on http://", 60), trainer.log_tail()
    url = re.search(r"query API on (http://\S+?)/ ", trainer.log_text()).group(1)
    with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:
        health = json.loads(reply.read())
    with urllib.request.urlopen(url + "/clusters?limit=5", timeout=10) as reply:
        clusters = json.loads(reply.read())
    return {"url": url, "health": health, "clusters": clusters}


def _run_case(stream, root, name, workers, kill_one=False, query=False):
    deployment = Deployment(root, stream["bootstrap"], stream["config"], name)
    trainer = deployment.trainer()
    processes = [deployment.worker(number) for number in range(workers)]
    if kill_one:
        # Paced input, so the victim is mid-stream with an open window when killed,
        # and a router restart's copies of 3 messages for the workers to drop.
        for process in processes:
            assert process.wait_for_log("owning by-service partitions [", 60), process.log_tail()
        # Wait until the group settled with partitions on both workers.
        deadline = time.monotonic() + 60
        while not all(_owns_some(process) for process in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        sender = _by_service_async(stream["bootstrap"], deployment.records_topic, stream["messages"])
        victim = processes[0]
        assert _wait_for_windows(victim, 3, 60), f"victim emitted no window:\n{victim.log_tail()}"
        assert sender.is_alive(), "the input ended before the kill: the test no longer kills mid-stream"
        victim.signal(signal.SIGKILL)
        victim.wait(30)
        sender.join(120)
        processes = processes[1:]
    else:
        _by_service(stream["bootstrap"], deployment.records_topic, stream["messages"])
    if query:
        assert _wait_for_windows_assembled(trainer, 5, 60), trainer.log_tail()
        deployment.query = _query_trainer(trainer)
    for number, process in enumerate(processes):
        _finish(process, f"worker {number}")
    summary = _finish(trainer, "trainer")
    return deployment, summary, processes


def _wait_for_windows_assembled(process, count, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(re.findall(r"assembled window \d+", process.log_text())) >= count:
            return True
        if process.process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _owns_some(process):
    owned = re.findall(r"owning by-service partitions \[([\d, ]*)\]", process.log_text())
    return bool(owned and owned[-1])


def _by_service_async(bootstrap, topic, messages):
    import threading

    thread = threading.Thread(target=_by_service, args=(bootstrap, topic, messages), kwargs={
        "pause_s": 0.03, "repeat_tail": 3}, daemon=True)
    thread.start()
    return thread


def _wait_for_windows(process, count, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(re.findall(r"partition \d+ window \d+ emitted", process.log_text())) >= count:
            return True
        if process.process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def stream(kafka_broker, tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    traffic = harness.make_traffic(root / "traffic", minutes=40, scale=0.1, seed=11)
    config = harness.write_config(root / "config.yaml", traffic, services={"mode": "domain"})
    return {"bootstrap": kafka_broker.bootstrap_servers, "config": config, "messages": traffic.messages,
            "root": root, "traffic": traffic}


@pytest.fixture(scope="module")
def one_worker(stream):
    deployment, summary, _ = _run_case(stream, stream["root"], "one", workers=1)
    return deployment, summary


def test_one_worker_matches_single_daemon(stream, one_worker):
    deployment, summary = one_worker
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    produce_values(stream["bootstrap"], topic, stream["messages"], partition=0)
    output = stream["root"] / "daemon"
    argv = harness.daemon_argv(stream["config"], stream["bootstrap"], topic, f"g-{topic}", output,
                               "--dump-sentences", str(stream["root"] / "daemon-sentences"), *harness.FINITE_RUN)
    harness.run_to_end(argv, stream["root"] / "daemon.log")
    scaled = _result(deployment.output, deployment.dump)
    single = _result(output, stream["root"] / "daemon-sentences")
    assert scaled["windows_closed"] > 30
    assert scaled["sentences"] == single["sentences"]
    assert scaled["labels"] == single["labels"]
    assert scaled["alerts"] == single["alerts"]
    assert scaled["stage_files"].keys() == single["stage_files"].keys()
    # The trainer's own windower sees no record (workers window), so its
    # watermark and offsets differ; its sender filter and services must not.
    for name in set(scaled["stage_files"]) - {"windows/windower.json", "windows/windower_records.json"}:
        assert scaled["stage_files"][name] == single["stage_files"][name], name
    assert "idle partitions skipped 0" in summary


def test_two_workers_match_one(stream, one_worker):
    reference = _result(one_worker[0].output, one_worker[0].dump)
    deployment, summary, workers = _run_case(stream, stream["root"], "two", workers=2, query=True)
    result = _result(deployment.output, deployment.dump)
    assert result == reference
    # The trainer serves the query API while it assembles windows.
    # Five windows were assembled when it was asked; the last may still be
    # in the pipeline, so only the earlier ones are sure to be published.
    assert deployment.query["health"]["windows_closed"] >= 4
    assert deployment.query["health"]["senders"] > 0
    owned = [re.findall(r"owning by-service partitions \[([\d, ]*)\]", w.log_text())[-1] for w in workers]
    assert all(owned), f"a worker owned no partition at the end: {owned}"


def test_killed_worker_fails_over(stream, one_worker):
    reference = _result(one_worker[0].output, one_worker[0].dump)
    deployment, summary, survivors = _run_case(stream, stream["root"], "killed", workers=2, kill_one=True)
    result = _result(deployment.output, deployment.dump)
    assert result["sentences"] == reference["sentences"]
    assert result["labels"] == reference["labels"]
    assert result["alerts"] == reference["alerts"]
    assert result == reference
    survivor_log = survivors[0].log_text()
    assert "owning by-service partitions [0, 1, 2, 3]" in survivor_log
    duplicates = int(re.search(r"duplicates dropped (\d+)", survivors[0].stdout_text).group(1))
    assert duplicates > 0
