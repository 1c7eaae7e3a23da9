"""Signals and the metrics server for the scale-out loops, without loading the model stack.

The worker and router must start in a fraction of a second and stay small,
so they do not import ``darkvec_stream.daemon`` (which loads gensim, faiss
and river). This module only handles SIGTERM/SIGINT and serves metrics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import Iterator

from prometheus_client import CollectorRegistry

from darkvec_stream.errors import ConfigError
from darkvec_stream.metrics.server import Health, MetricsServer

logger = logging.getLogger(__name__)


class StopRequest:
    """Set by the first SIGTERM or SIGINT; a second one exits at once, skipping ``last_step``.

    ``last_step`` names what a clean stop still does (a commit, a checkpoint),
    for the log lines. The daemon uses this class too.
    """

    def __init__(self, last_step: str = "commit") -> None:
        self._event = threading.Event()
        self.last_step = last_step

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        """Handle SIGTERM and SIGINT while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handle(signal_number: int, frame: FrameType | None) -> None:
            if self:
                logger.warning("second signal %s: exiting at once without a %s", signal_number, self.last_step)
                os._exit(128 + signal_number)
            logger.info("signal %s: finishing the current step, then %s and exit", signal_number, self.last_step)
            self.set()

        for sig in previous:
            signal.signal(sig, handle)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def metrics_server(registry: CollectorRegistry, health: Health, host: str, port: int | None) -> Iterator[None]:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` while the block runs; None disables it."""
    if port is None:
        yield
        return
    try:
        server = MetricsServer(registry, health, host, port).start()
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port} ({error}); give each instance its own --metrics-port"
        ) from error
    logger.info("metrics on http://%s:%s/metrics", *server.address)
    try:
        yield
    finally:
        server.stop()
