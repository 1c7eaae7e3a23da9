"""Small collectors on 127.0.0.1 for sink tests: syslog over UDP/TCP and a Splunk HEC."""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import dataclass, field


class FakeClock:
    """A monotonic clock the test moves by hand, in seconds."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def free_tcp_port() -> int:
    """Return a port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TcpSyslogCollector:
    """Accept TCP connections and split octet-counted frames (RFC 6587) into messages."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[bytes] = []
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen()
        self.port = int(self._server.getsockname()[1])
        self._connections: list[socket.socket] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[bytes]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s)
            return list(self.messages)

    def close(self) -> None:
        """Stop listening and close every connection, like a collector that shuts down."""
        # shutdown() wakes threads blocked in accept() or recv(); close() alone does not.
        for sock in (self._server, *self._connections):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b" " in buffer:
                length_text, _, rest = buffer.partition(b" ")
                length = int(length_text)
                if len(rest) < length:
                    break
                with self._arrived:
                    self.messages.append(rest[:length])
                    self._arrived.notify_all()
                buffer = rest[length:]


@dataclass
class HecRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HecBehaviour:
    """HTTP statuses the fake HEC returns in order, then 200 once the list is used up."""

    statuses: list[int] = field(default_factory=list)
    requests: list[HecRequest] = field(default_factory=list)


def start_hec_server(behaviour: HecBehaviour) -> http.server.ThreadingHTTPServer:
    """Start a fake Splunk HEC on 127.0.0.1 (port 0) in a daemon thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            behaviour.requests.append(HecRequest(self.path, dict(self.headers), body))
            status = behaviour.statuses.pop(0) if behaviour.statuses else 200
            reply = b'{"text":"Success","code":0}' if status == 200 else b'{"text":"Server is busy","code":9}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
