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
        return verified_checkpoint(path) / stage
    for checkpoints in (path, path / "checkpoints"):
        if (checkpoints / KEY_FILE).is_file():
            latest = CheckpointStore(checkpoints).latest()
            if latest is None:
                raise StateError(f"no valid checkpoint in {checkpoints}")
            return latest.path / stage
    return path


def verified_checkpoint(path: Path) -> Path:
    """Return ``path`` once its signature and checksums verify with the key beside it.

    A single checkpoint given on the command line is checked like the newest
    one of a directory: an edited or copied-without-key checkpoint is refused.
    """
    key = path.parent / KEY_FILE
    if not key.is_file():
        raise StateError(
            f"checkpoint {path} cannot be verified: its signing key {key} is not beside it; give the "
            "checkpoints directory (or the daemon's output directory) instead of a copied checkpoint"
        )
    try:
        CheckpointStore(path.parent).verify(path)
    except StateError as error:
        raise StateError(f"checkpoint {path} failed verification: {error}") from None
    return path
