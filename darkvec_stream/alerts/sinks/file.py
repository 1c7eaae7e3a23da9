"""Append rendered alerts to a local file, one alert per line, fsync on flush.

Each line is written with one ``write`` on an ``O_APPEND`` descriptor. A
file moved away by log rotation is noticed at the next flush and reopened
under its path. Compression and size-based rotation are out of scope.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from darkvec_stream.alerts.sinks.base import AlertSink, PendingAlert, TransientDeliveryError

logger = logging.getLogger(__name__)

FILE_MODE = 0o640


class FileSink(AlertSink):
    """Write alerts in one format to ``path`` (created with its parent folders).

    ``fsync`` True makes ``flush`` call ``os.fsync`` so that flushed alerts
    survive a power loss. Other keyword arguments go to ``AlertSink``.
    """

    def __init__(
        self,
        path: Path | str,
        format: str = "jsonl",
        *,
        name: str | None = None,
        fsync: bool = True,
        **options: Any,
    ) -> None:
        self.path = Path(path)
        super().__init__(name=name or f"file:{self.path}", format=format, **options)
        self._fsync = fsync
        self._fd: int | None = None

    def _deliver(self, batch: Sequence[PendingAlert]) -> None:
        for index, pending in enumerate(batch):
            try:
                self._write_line(pending.payload + b"\n")
            except OSError as error:
                raise TransientDeliveryError(
                    f"cannot write {self.path}: {error}", delivered=index
                ) from error

    def _sync(self) -> None:
        if self._fd is None:
            return
        try:
            if self._fsync:
                os.fsync(self._fd)
            if self._rotated(self._fd):
                logger.info("alert file %s was moved away; reopening it", self.path)
                self._disconnect()
        except OSError as error:
            raise TransientDeliveryError(f"cannot sync {self.path}: {error}") from error

    def _disconnect(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError as error:
                logger.warning("closing alert file %s failed: %s", self.path, error)

    def _write_line(self, line: bytes) -> None:
        fd = self._open()
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        return self._fd

    def _rotated(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return True
        open_file = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) != (open_file.st_dev, open_file.st_ino)
