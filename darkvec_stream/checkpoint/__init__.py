"""Atomic, verified checkpoints of the whole pipeline state."""

from darkvec_stream.checkpoint.store import Checkpoint, CheckpointStore

__all__ = ["Checkpoint", "CheckpointStore"]
