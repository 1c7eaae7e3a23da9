import errno
import json
import os

import pytest

from darkvec_stream.checkpoint import CheckpointStore
from darkvec_stream.errors import StateError


def _fill(value):
    def fill(directory):
        (directory / "state.json").write_text(json.dumps({"value": value}))
        (directory / "sub").mkdir()
        (directory / "sub" / "data.bin").write_bytes(bytes([value % 256]) * 100)

    return fill


def test_latest_returns_newest(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    for value in range(5):
        store.write(_fill(value), {"window": value})
    latest = store.latest()
    assert latest.meta["window"] == 4
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("ckpt-")]) == 3


def test_corrupt_file_falls_back(tmp_path, caplog):
    store = CheckpointStore(tmp_path, keep=3)
    store.write(_fill(1), {"window": 1})
    newest = store.write(_fill(2), {"window": 2})
    (newest.path / "sub" / "data.bin").write_bytes(b"tampered")
    with caplog.at_level("WARNING"):
        latest = store.latest()
    assert latest.meta["window"] == 1
    assert "checksum does not match" in caplog.text


def test_partial_checkpoint_is_skipped(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.write(_fill(1), {"window": 1})
    newest = store.write(_fill(2), {"window": 2})
    (newest.path / "manifest.json").unlink()
    assert store.latest().meta["window"] == 1


def test_foreign_checkpoint_is_rejected(tmp_path):
    ours = CheckpointStore(tmp_path / "a")
    theirs = CheckpointStore(tmp_path / "b")
    foreign = theirs.write(_fill(7), {"window": 7})
    os.rename(foreign.path, tmp_path / "a" / foreign.path.name)
    assert ours.latest() is None


def test_disk_full_keeps_previous(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.write(_fill(1), {"window": 1})

    def full(directory):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StateError, match="disk is full"):
        store.write(full, {"window": 2})
    assert store.latest().meta["window"] == 1
    assert not list(tmp_path.glob(".tmp-*"))


def test_key_file_is_private(tmp_path):
    CheckpointStore(tmp_path)
    mode = (tmp_path / ".checkpoint-key").stat().st_mode & 0o777
    assert mode == 0o600


def test_malformed_manifest_falls_back(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.write(_fill(1), {"window": 1})
    newest = store.write(_fill(2), {"window": 2})
    manifest = json.loads((newest.path / "manifest.json").read_text())
    del manifest["files"]
    (newest.path / "manifest.json").write_text(json.dumps(manifest))
    assert store.latest().meta["window"] == 1


def test_lost_key_with_checkpoints_refuses(tmp_path):
    CheckpointStore(tmp_path).write(_fill(1), {"window": 1})
    (tmp_path / ".checkpoint-key").unlink()
    with pytest.raises(StateError, match="key .* is missing"):
        CheckpointStore(tmp_path)


def test_no_valid_checkpoint_refuses(tmp_path):
    store = CheckpointStore(tmp_path)
    only = store.write(_fill(1), {"window": 1})
    (only.path / "state.json").write_text("tampered")
    assert store.latest() is None
    with pytest.raises(StateError, match="none of the 1 checkpoints"):
        store.latest_or_none()
