"""HTTP server for the query API: loopback by default, JSON only, bounded requests.

``QueryServer`` serves a ``QueryApi`` from daemon threads next to the
pipeline, so the daemon and the trainer can both run it over their own
``SnapshotPublisher``. Each request gets a socket timeout, a request line and
header size limit (414 and 431), and a connection cap (503 beyond it). It
serves no files, sends no CORS headers, and has no authentication: put it
behind a reverse proxy with authentication to expose it beyond the host.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Iterator

from darkvec_stream.errors import ConfigError
from darkvec_stream.query.api import ApiResponse, QueryApi
from darkvec_stream.query.snapshot import SnapshotSource

if TYPE_CHECKING:
    from darkvec_stream.config import Settings

logger = logging.getLogger(__name__)

SERVER_NAME = "darkvec-stream"
_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)


class QueryHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that refuses connections beyond ``max_connections``."""

    daemon_threads = True
    # Each request runs on its own thread. A listen backlog of 64 is plenty
    # for an analyst API and keeps floods in the kernel queue short.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _reject_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class QueryServer:
    """Serve the query API until ``stop``; ``start`` binds and returns the server.

    >>> from darkvec_stream.query.snapshot import SnapshotPublisher
    >>> server = QueryServer(QueryApi(SnapshotPublisher()), port=0).start()
    >>> server.address[0]
    '127.0.0.1'
    >>> server.stop()
    """

    def __init__(
        self,
        api: QueryApi,
        host: str = "127.0.0.1",
        port: int = 9109,
        *,
        request_timeout_s: float = 10.0,
        max_request_line_bytes: int = 8192,
        max_header_bytes: int = 16384,
        max_connections: int = 64,
    ) -> None:
        if request_timeout_s <= 0 or max_request_line_bytes < 64 or max_header_bytes < 256 or max_connections < 1:
            raise ConfigError(
                f"query server limits are invalid: request_timeout_s={request_timeout_s} (> 0), "
                f"max_request_line_bytes={max_request_line_bytes} (>= 64), max_header_bytes={max_header_bytes} "
                f"(>= 256), max_connections={max_connections} (>= 1)"
            )
        handler = _make_handler(api, request_timeout_s, max_request_line_bytes, max_header_bytes)
        self.api = api
        self._server = QueryHTTPServer((host, port), handler, max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, name="query-http", daemon=True)

    @classmethod
    def for_source(cls, source: SnapshotSource, host: str = "127.0.0.1", port: int = 9109,
                   **limits: Any) -> "QueryServer":
        """Build the API over ``source`` with default limits and serve it on ``host:port``."""
        api_options = {name: limits.pop(name) for name in ("max_page_size", "max_neighbours", "evidence_neighbours")
                       if name in limits}
        return cls(QueryApi(source, **api_options), host, port, **limits)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> "QueryServer":
        self._thread.start()
        logger.info("query API on %s/ (read-only; OpenAPI description at /openapi.json)", self.url)
        return self

    def stop(self) -> None:
        # ``shutdown`` waits for ``serve_forever`` to return: it would never
        # return for a server that was built but not started.
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        logger.info("query API on %s/ stopped", self.url)


@contextlib.contextmanager
def serve_query(settings: "Settings", source: SnapshotSource) -> Iterator[QueryServer | None]:
    """Run the query API of ``settings.query`` for the block; yield the server, or None when disabled.

    A busy port raises one ``ConfigError`` that names the setting to change.
    """
    query = settings.query
    if not query.enabled:
        yield None
        return
    try:
        server = QueryServer.for_source(
            source, query.host, query.port,
            max_page_size=query.max_page_size, max_neighbours=query.max_neighbours,
            evidence_neighbours=settings.knn.k, request_timeout_s=query.request_timeout_s,
            max_connections=query.max_connections,
        ).start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"query.port {query.port} on {query.host} is in use, perhaps by another "
                "darkvec-stream; set query.port to a free port, 0 for any, or query.enabled=false"
            ) from None
        raise ConfigError(f"query API cannot listen on {query.host}:{query.port}: {error.strerror}") from None
    try:
        yield server
    finally:
        server.stop()


def _reject_busy(request: socket.socket) -> None:
    body = b'{"error":"busy","message":"too many open connections to the query API: retry in a second"}'
    head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
    try:
        request.settimeout(1.0)
        request.sendall(head + body)
    except OSError as error:
        logger.debug("failed to send 503 to a connection over the limit: %s", error)


def _make_handler(api: QueryApi, timeout_s: float, max_line_bytes: int,
                  max_header_bytes: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = timeout_s
        server_version = SERVER_NAME
        sys_version = ""
        # One request per connection, so no idle keep-alive connection keeps a thread.
        protocol_version = "HTTP/1.0"

        def handle_one_request(self) -> None:
            self.close_connection = True
            # ``timeout`` bounds each read, and this deadline bounds reading the
            # whole request: a client sending one byte at a time is dropped
            # after timeout_s. The deadline stops once the request is read.
            self._deadline = threading.Timer(timeout_s, self._expire)
            self._deadline.daemon = True
            self._deadline.start()
            try:
                self._handle_one()
            except (TimeoutError, ConnectionError, OSError) as error:
                # A client that stalls past the timeout or hangs up early.
                logger.debug("query http connection from %s dropped: %s", self.client_address[0], error)
            finally:
                self._deadline.cancel()

        def _expire(self) -> None:
            logger.debug("query http connection from %s passed its %s s deadline", self.client_address[0], timeout_s)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _handle_one(self) -> None:
            self.raw_requestline = self.rfile.readline(max_line_bytes + 1)
            if not self.raw_requestline:
                return
            if len(self.raw_requestline) > max_line_bytes:
                self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
                self._error(HTTPStatus.REQUEST_URI_TOO_LONG, "uri_too_long",
                            f"request line is longer than {max_line_bytes} bytes: shorten the URL")
                return
            if not self.parse_request():
                return
            header_bytes = sum(len(name) + len(value) + 4 for name, value in self.headers.items())
            if header_bytes > max_header_bytes:
                self._error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large",
                            f"request headers are larger than {max_header_bytes} bytes: send fewer or smaller headers")
                return
            self._deadline.cancel()
            try:
                response = api.handle(self.command, self.path)
            except Exception:
                logger.exception("query API failed on %s %s", self.command, self.path[:200])
                response = ApiResponse(500, {"error": "internal_error",
                                             "message": "the query failed inside the server; see the daemon log"})
            self._answer(response)
            self.wfile.flush()

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # ``parse_request`` reports malformed requests and oversized
            # header lines through here, so they get JSON replies as well.
            # Before a version is parsed the handler would reply in HTTP/0.9,
            # without a status line, so every error reply uses HTTP/1.0.
            if getattr(self, "request_version", "HTTP/0.9") not in ("HTTP/1.0", "HTTP/1.1"):
                self.request_version = "HTTP/1.0"
            if code == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
                self._error(code, "headers_too_large", f"request headers are too large: {message}")
            else:
                self._error(code, "bad_request", f"malformed HTTP request: {message or HTTPStatus(code).phrase}")

        def _error(self, status: int, code: str, message: str) -> None:
            self._answer(ApiResponse(int(status), {"error": code, "message": message}))

        def _answer(self, response: ApiResponse) -> None:
            body = response.encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (*_SECURITY_HEADERS, *response.headers):
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("query http %s %s", self.address_string(), format % args)

    return Handler
