"""Atomic, checksummed and signed checkpoint directories.

A checkpoint is a directory of files written by the stages (``.npy`` without
pickle, JSON, FAISS's own index format) plus ``manifest.json``, which lists
each file's SHA-256 and carries an HMAC-SHA256 over that list. The key is a
random secret created once next to the checkpoints (mode 0600), so the
daemon restores only checkpoints that it wrote itself: a directory copied in
from elsewhere, or edited by hand, fails the signature and is skipped.

Writing follows the usual atomic pattern: a temporary directory, fsync of
every file and of the directory, one rename, fsync of the parent. This module
does not know what the stages store; it only guarantees all-or-nothing.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from darkvec_stream.errors import StateError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KEY_FILE = ".checkpoint-key"
PREFIX = "ckpt-"


@dataclass(frozen=True)
class Checkpoint:
    """One verified checkpoint on disk."""

    path: Path
    sequence: int
    meta: Mapping[str, Any]


class CheckpointStore:
    """Write and restore checkpoints in one directory, keeping the newest ``keep``.

    >>> import tempfile
    >>> store = CheckpointStore(Path(tempfile.mkdtemp()), keep=2)
    >>> _ = store.write(lambda d: (d / "state.json").write_text("{}"), {"window": 1})
    >>> store.latest().meta["window"]
    1
    """

    def __init__(self, directory: Path, keep: int = 3) -> None:
        if keep < 1:
            raise StateError(f"checkpoint keep must be at least 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = self._load_or_create_key()

    def latest_or_none(self) -> Checkpoint | None:
        """Return the newest valid checkpoint, None when there are none, and raise when none is valid.

        Checkpoints on disk that all fail verification mean the state cannot be
        trusted (a lost key, a copied directory): starting from scratch would
        replay the topic from the committed offsets with an empty model, so the
        operator must decide.
        """
        latest = self.latest()
        published = self._published()
        if latest is None and published:
            raise StateError(
                f"none of the {len(published)} checkpoints in {self.directory} verifies (see the warnings "
                "above); move them away to start from scratch, or restore the key file they were signed with"
            )
        return latest

    def write(self, fill: Callable[[Path], None], meta: Mapping[str, Any]) -> Checkpoint:
        """Create the next checkpoint: ``fill`` writes the stage files into a directory."""
        sequence = self._next_sequence()
        temporary = self.directory / f".tmp-{sequence:012d}-{os.getpid()}"
        final = self.directory / f"{PREFIX}{sequence:012d}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        try:
            # 1. The stages write their files.
            fill(temporary)

            # 2. Hash and sign what they wrote, then make it durable.
            manifest = self._manifest(temporary, sequence, meta)
            (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            _fsync_tree(temporary)

            # 3. Publish with one rename; readers never see a partial checkpoint.
            os.rename(temporary, final)
            _fsync_dir(self.directory)
        except OSError as error:
            shutil.rmtree(temporary, ignore_errors=True)
            reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
            raise StateError(
                f"checkpoint {sequence} in {self.directory} failed: {reason}; "
                "the previous checkpoint is still valid"
            ) from error
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        self._prune()
        return Checkpoint(final, sequence, dict(meta))

    def latest(self) -> Checkpoint | None:
        """Return the newest checkpoint that verifies, warning about each one skipped."""
        for path in sorted(self._published(), reverse=True):
            try:
                return self.verify(path)
            except StateError as error:
                logger.warning("skipping checkpoint %s: %s", path.name, error)
        return None

    def verify(self, path: Path) -> Checkpoint:
        """Check a checkpoint's signature and every file's checksum."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise StateError(f"manifest missing or unreadable: {error}") from None
        try:
            return self._verify_manifest(path, manifest)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise StateError(f"manifest is malformed: {error!r}") from None

    def _verify_manifest(self, path: Path, manifest: dict[str, Any]) -> Checkpoint:
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StateError(
                f"format version {manifest.get('format_version')!r} is not {FORMAT_VERSION}; "
                "see the upgrade notes in docs/operations.md"
            )
        expected = self._sign(manifest["files"], manifest["sequence"], manifest["meta"])
        if not hmac.compare_digest(expected, manifest.get("signature", "")):
            raise StateError("signature does not match: not written by this daemon's key, or edited")
        for name, digest in manifest["files"].items():
            file_path = path / name
            if not file_path.is_file() or _sha256(file_path) != digest:
                raise StateError(f"file {name} is missing or its checksum does not match")
        return Checkpoint(path, int(manifest["sequence"]), manifest["meta"])

    def _manifest(self, directory: Path, sequence: int, meta: Mapping[str, Any]) -> dict[str, Any]:
        files = {
            str(path.relative_to(directory)): _sha256(path)
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        meta_plain = json.loads(json.dumps(dict(meta), default=str))
        return {
            "format_version": FORMAT_VERSION,
            "sequence": sequence,
            "written_at_s": time.time(),
            "meta": meta_plain,
            "files": files,
            "signature": self._sign(files, sequence, meta_plain),
        }

    def _sign(self, files: Mapping[str, str], sequence: int, meta: Any) -> str:
        message = json.dumps({"files": files, "sequence": sequence, "meta": meta}, sort_keys=True)
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _load_or_create_key(self) -> bytes:
        key_path = self.directory / KEY_FILE
        if not key_path.exists() and self._published():
            raise StateError(
                f"checkpoint key {key_path} is missing but {self.directory} holds checkpoints signed "
                "with it; restore the key from a backup, or move the checkpoints away to start from scratch"
            )
        if not key_path.exists():
            descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
                handle.flush()
                os.fsync(handle.fileno())
        key = key_path.read_bytes()
        if len(key) != 32:
            raise StateError(f"checkpoint key {key_path} is corrupt: expected 32 bytes, found {len(key)}")
        return key

    def _published(self) -> list[Path]:
        return [path for path in self.directory.iterdir() if path.is_dir() and path.name.startswith(PREFIX)]

    def _next_sequence(self) -> int:
        sequences = [int(path.name[len(PREFIX):]) for path in self._published() if path.name[len(PREFIX):].isdigit()]
        return max(sequences, default=0) + 1

    def _prune(self) -> None:
        for path in sorted(self._published(), reverse=True)[self.keep:]:
            shutil.rmtree(path, ignore_errors=True)
        for leftover in self.directory.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for sub in [directory, *[p for p in directory.rglob("*") if p.is_dir()]]:
        _fsync_dir(sub)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
