"""Find a stage's saved state from what a user passes on the command line.

Commands such as ``evaluate``, ``export`` and ``clusters`` take ``--state``:
a stage directory itself, one checkpoint, a checkpoint directory, or the
daemon's output directory. The last two resolve to the newest checkpoint
whose signature and checksums verify.
"""

from __future__ import annotations

from pathlib import Path

from darkvec_stream.checkpoint.store import KEY_FILE, MANIFEST, CheckpointStore
from darkvec_stream.errors import StateError


def stage_directory(path: Path, stage: str) -> Path:
    """Return the directory holding ``stage``'s state (for example ``embedding``) under ``path``."""
    path = Path(path)
    if (path / MANIFEST).is_file() and (path / stage).is_dir():
        return path / stage
    for checkpoints in (path, path / "checkpoints"):
        if (checkpoints / KEY_FILE).is_file():
            latest = CheckpointStore(checkpoints).latest()
            if latest is None:
                raise StateError(f"no valid checkpoint in {checkpoints}")
            return latest.path / stage
    return path
