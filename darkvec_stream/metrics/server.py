"""HTTP endpoint for ``/metrics`` (Prometheus text format) and ``/healthz``.

It binds the address the configuration names, 127.0.0.1 by default, and
serves from a daemon thread so a slow scrape never delays the pipeline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)


@dataclass
class Health:
    """Readiness and liveness facts that the pipeline updates as it runs."""

    started_s: float = field(default_factory=time.time)
    ready: bool = False
    last_window_close_s: float | None = None
    last_window_start_ns: int | None = None
    stale_after_s: float = 7200.0
    clock: Callable[[], float] = time.time

    def report(self) -> tuple[int, dict[str, object]]:
        now = self.clock()
        age = None if self.last_window_close_s is None else now - self.last_window_close_s
        body = {
            "ready": self.ready,
            "uptime_s": round(now - self.started_s, 3),
            "last_window_close_age_s": None if age is None else round(age, 3),
            "last_window_start_ns": self.last_window_start_ns,
        }
        return (200 if self.ready else 503), body


class MetricsServer:
    """Serve metrics and health until ``stop`` is called."""

    def __init__(self, registry: CollectorRegistry, health: Health, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _make_handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> "MetricsServer":
        self._thread.start()
        logger.info("metrics and health endpoint on http://%s:%s/", *self.address)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path.split("?")[0] == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif self.path.split("?")[0] in ("/healthz", "/readyz"):
                status, body = health.report()
                self._send(status, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("http %s", format % args)

    return Handler
