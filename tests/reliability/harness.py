"""Helpers for the reliability tests: seeded traffic, daemon subprocesses, outcomes.

The tests run the installed ``darkvec-stream`` command as a child process,
exactly as an operator would, and compare what it leaves on disk. This
module does not assert anything; the tests do.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from darkvec_stream.checkpoint import Checkpoint, CheckpointStore
from darkvec_stream.simulate.config import SimulationConfig
from darkvec_stream.simulate.engine import Simulation
from darkvec_stream.simulate.truth import write_labels
from darkvec_stream.simulate.writers import encode_batch

DAEMON = Path(sys.executable).with_name("darkvec-stream")

# Small, fast windows: a window closes every simulated minute and costs
# about 0.2 s with its checkpoint, so 45 minutes of traffic run in ~10 s.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "windows": {"window_s": 60, "lateness_s": 5},
    "sender_filter": {"min_packets": 2, "sketch_width": 4096, "sketch_depth": 2},
    "embedding": {"vector_size": 8, "context": 5, "epochs_per_window": 1, "workers": 1},
    "clusters": {"every_windows": 1, "active_s": 600, "k": 5},
    "alerts": {"warmup_windows": 2, "min_cluster_size": 3},
    "kafka": {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "poll_timeout_ms": 200},
    "metrics": {"enabled": False},
    "checkpoint": {"keep": 3},
}

# Options of a run over a finite stream: stop once caught up, close every window.
FINITE_RUN = ("--exit-when-idle", "3", "--flush-at-exit")

# Lines no decoder accepts, mixed into the stream so that dead letters are
# part of what must come out exactly once.
MALFORMED_LINES = (b"not,a,record", b"1614556800000000000,999.1.1.1,198.51.100.1,1,23,6")


@dataclass(frozen=True)
class Traffic:
    """A seeded stream split into Kafka message payloads, and its ground-truth file."""

    messages: tuple[bytes, ...]
    labels_path: Path
    records: int
    malformed: int


def make_traffic(
    directory: Path, minutes: float, scale: float, seed: int, records_per_message: int = 60
) -> Traffic:
    """Simulate an hour of traffic and keep its first ``minutes``, with malformed lines mixed in.

    The simulator's shortest run is one hour, which is more windows than the tests need.
    """
    run = Simulation(SimulationConfig(days=1 / 24, scale=scale, seed=seed))
    end_ns = run.config.start_ns + int(minutes * 60e9)
    lines: list[bytes] = []
    for batch in run.batches():
        encoded = encode_batch(batch, "record-csv").rstrip(b"\n").split(b"\n")
        lines += [line for line in encoded if int(line.split(b",", 1)[0]) < end_ns]
    messages = []
    malformed = 0
    for number, first in enumerate(range(0, len(lines), records_per_message)):
        payload = b"\n".join(lines[first:first + records_per_message])
        if number % 10 == 5:
            payload += b"\n" + MALFORMED_LINES[number % 2]
            malformed += 1
        messages.append(payload)
    directory.mkdir(parents=True, exist_ok=True)
    write_labels(run, directory)
    return Traffic(tuple(messages), directory / "labels.csv", len(lines), malformed)


def write_config(path: Path, traffic: Traffic, **sections: Mapping[str, Any]) -> Path:
    """Write a YAML configuration: the fast settings, the truth labels, then ``sections``."""
    document: dict[str, dict[str, Any]] = {key: dict(value) for key, value in FAST_SETTINGS.items()}
    document["labels"] = {"sources": [{"name": "truth", "path": str(traffic.labels_path), "format": "csv"}]}
    for section, values in sections.items():
        document.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(document))
    return path


def daemon_argv(
    config: Path, bootstrap: str, topic: str, group: str, output: Path, *extra: str
) -> list[str]:
    """Return the ``darkvec-stream run`` command line for one Kafka topic and group."""
    return [
        str(DAEMON), "--config", str(config),
        "--set", f"kafka.bootstrap_servers={bootstrap}",
        "--set", f"kafka.topic={topic}",
        "--set", f"kafka.group_id={group}",
        "run", "--output", str(output), *extra,
    ]


class DaemonProcess:
    """One daemon child process whose stderr goes to ``log_path``."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        # Several runs may share one log; this run's lines start here.
        self._log_start = self._log.tell()
        self.process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
        )
        self.started_s = time.monotonic()

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self._log.close()

    def finish(self, timeout_s: float) -> tuple[int, str]:
        """Wait for a normal exit and return the exit code and standard output."""
        try:
            stdout, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"daemon did not exit within {timeout_s} s; log:\n{self.log_tail()}") from None
        finally:
            self._log.close()
        return self.process.returncode, stdout.decode()

    def log_text(self) -> str:
        """Return what this run has logged so far."""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode(errors="replace")

    def log_tail(self, max_bytes: int = 6000) -> str:
        return self.log_text()[-max_bytes:]

    def wait_for_log(self, needle: str, timeout_s: float) -> bool:
        """Return True once this run logs ``needle``, False on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            if self.process.poll() is not None:
                return needle in self.log_text()
            time.sleep(0.05)
        return False


def run_to_end(argv: Sequence[str], log_path: Path, timeout_s: float = 180.0) -> str:
    """Run the daemon until it exits by itself; fail with its log unless it exits with 0."""
    daemon = DaemonProcess(argv, log_path)
    code, stdout = daemon.finish(timeout_s)
    if code != 0:
        raise AssertionError(f"daemon exited with {code}; log:\n{daemon.log_tail()}")
    return stdout


def latest_checkpoint(output: Path) -> Checkpoint | None:
    return CheckpointStore(output / "checkpoints").latest()


def checkpoints(output: Path) -> list[Path]:
    return sorted((output / "checkpoints").glob("ckpt-*"))


@dataclass(frozen=True)
class Outcome:
    """Everything a run leaves behind that must not depend on crashes or restarts."""

    alerts: tuple[str, ...]
    dead_letters: tuple[str, ...]
    offsets: tuple[tuple[str, int, int], ...]
    windows_closed: int
    pipeline_state: dict[str, Any]
    stage_files: dict[str, bytes]


def read_outcome(output: Path) -> Outcome:
    """Read the alert and dead-letter files and the newest valid checkpoint of a run."""
    checkpoint = latest_checkpoint(output)
    if checkpoint is None:
        raise AssertionError(f"no valid checkpoint in {output / 'checkpoints'}")
    state = json.loads((checkpoint.path / "pipeline.json").read_text())
    # Output sizes are keyed by absolute path, which differs between runs.
    state["output_sizes"] = {Path(name).name: size for name, size in state["output_sizes"].items()}
    # Sinks name their files by absolute path; replace the run's own directory.
    own_directory = str(output.resolve()).encode()
    stage_files = {
        str(path.relative_to(checkpoint.path)): path.read_bytes().replace(own_directory, b"<output>")
        for path in sorted(checkpoint.path.rglob("*"))
        if path.is_file() and path.name not in ("manifest.json", "pipeline.json")
    }
    return Outcome(
        alerts=tuple(_lines(output / "alerts.jsonl")),
        dead_letters=tuple(_lines(output / "deadletter.jsonl")),
        offsets=tuple((topic, int(partition), int(offset)) for topic, partition, offset in checkpoint.meta["offsets"]),
        windows_closed=int(checkpoint.meta["windows_closed"]),
        pipeline_state=state,
        stage_files=stage_files,
    )


def _lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return iter(())
    return iter(path.read_text().splitlines())


def differences(reference: Outcome, other: Outcome) -> list[str]:
    """Name every part of two outcomes that differs (empty when they are identical)."""
    found = []
    for name in ("alerts", "dead_letters", "offsets", "windows_closed", "pipeline_state"):
        if getattr(reference, name) != getattr(other, name):
            found.append(name)
    for name in sorted(set(reference.stage_files) | set(other.stage_files)):
        if reference.stage_files.get(name) != other.stage_files.get(name):
            found.append(f"checkpoint file {name}")
    return found



def committed_offsets(bootstrap: str, group: str, topic: str, partitions: Sequence[int] = (0,)) -> dict[int, int | None]:
    """Read a group's committed offsets without joining the group."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {number: consumer.committed(TopicPartition(topic, number)) for number in partitions}
    finally:
        consumer.close(autocommit=False)


def records_read(stdout: str) -> int:
    """Return the ``records read`` count from the summary ``run`` prints at exit."""
    for line in stdout.splitlines():
        if line.startswith("records read "):
            return int(line.split()[2].rstrip(","))
    raise AssertionError(f"no 'records read' line in the run summary:\n{stdout}")
