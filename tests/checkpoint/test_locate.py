"""stage_directory: a checkpoint named on the command line is verified before use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from darkvec_stream.checkpoint import CheckpointStore
from darkvec_stream.checkpoint.locate import stage_directory
from darkvec_stream.errors import StateError


def write_checkpoint(directory: Path) -> Path:
    def fill(target: Path) -> None:
        (target / "embedding").mkdir()
        (target / "embedding" / "state.json").write_text('{"senders": 3}')

    return CheckpointStore(directory).write(fill, {"window": 1}).path


def test_one_checkpoint_resolves_when_it_verifies(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "checkpoints")
    assert stage_directory(checkpoint, "embedding") == checkpoint / "embedding"
    assert stage_directory(tmp_path, "embedding") == checkpoint / "embedding"


def test_edited_checkpoint_is_refused(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "checkpoints")
    (checkpoint / "embedding" / "state.json").write_text('{"senders": 4}')
    with pytest.raises(StateError, match="failed verification"):
        stage_directory(checkpoint, "embedding")


def test_copied_checkpoint_without_key_is_refused(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "checkpoints")
    copy = tmp_path / "elsewhere" / checkpoint.name
    shutil.copytree(checkpoint, copy)
    with pytest.raises(StateError, match="signing key"):
        stage_directory(copy, "embedding")
