"""Logging set-up for the entry point, and context fields shared by all lines.

Only the command line calls ``configure``. Modules log through
``logging.getLogger(__name__)``, and ``log_context`` adds the same context
fields (topic, partition, offset, window, model generation) to every line
emitted inside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from typing import Any, Iterator

CONTEXT_FIELDS = ("topic", "partition", "offset", "window", "generation")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("darkvec_log_context", default={})


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach context fields to every log line emitted inside the block."""
    merged = {**_context.get(), **{key: value for key, value in fields.items() if value is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = dict(_context.get())
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "context", {})
        if context:
            line += " [" + " ".join(f"{key}={context[key]}" for key in CONTEXT_FIELDS if key in context) + "]"
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "context", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Install one stderr handler on the package logger (never the root logger)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("darkvec_stream")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # kafka-python reports the cause of consumer and producer failures (an
    # exception in a rebalance callback, a broken connection) on its own
    # logger; without a handler those causes would be lost.
    library = logging.getLogger("kafka")
    library.handlers[:] = [handler]
    library.setLevel(max(logging.WARNING, logging.getLevelName(level) if isinstance(level, str) else level))
    library.propagate = False
