"""One read-only view of the pipeline's state, live or loaded from a checkpoint.

``AnalystState`` gathers what analysts ask about: the model, each sender's
label and history, the last clustering run with its transitions, and recent
alerts. The query API builds it from the running pipeline; the report and
the offline commands load it from a checkpoint, which they verify and never
modify. It does not run any stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkvec_stream.checkpoint.locate import stage_directory
from darkvec_stream.config import Settings
from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.errors import StateError
from darkvec_stream.query.history import SenderHistory
from darkvec_stream.query.journal import ClusterJournal

if TYPE_CHECKING:
    from darkvec_stream.pipeline import Pipeline

PIPELINE_FILE = "pipeline.json"


@dataclass(frozen=True)
class SenderLabelView:
    """A sender's current label: ``source`` is a list name, ``mirai`` or ``knn``."""

    label: str | None
    confidence: float
    source: str


@dataclass
class AnalystState:
    """The model, labels, history and clusters, as of one closed window."""

    embedding: SenderEmbedding
    history: SenderHistory
    journal: ClusterJournal
    labels: dict[str, SenderLabelView]
    windows_closed: int
    checkpoint: Path | None = None

    @classmethod
    def from_pipeline(cls, pipeline: "Pipeline") -> "AnalystState":
        """Refer to the live pipeline's objects; the caller decides how to share them safely."""
        labels = {
            sender: SenderLabelView(value.label, value.confidence, value.source)
            for sender, value in pipeline.sender_labels.items()
        }
        return cls(pipeline.embedding, pipeline.history, pipeline.journal, labels, pipeline.windows_closed)

    @classmethod
    def from_checkpoint(cls, settings: Settings, path: Path) -> "AnalystState":
        """Load from a checkpoint, a checkpoint directory, or the daemon's output directory.

        The checkpoint's signature and checksums are verified first (see
        ``checkpoint.locate``); nothing is written.
        """
        checkpoint = stage_directory(Path(path), "embedding").parent
        if not (checkpoint / PIPELINE_FILE).is_file():
            raise StateError(
                f"{path} holds no pipeline checkpoint: give the daemon's output directory, its checkpoints "
                "directory, or one checkpoint"
            )
        document = _read_json(checkpoint / PIPELINE_FILE)
        history = SenderHistory(settings.query.history_windows, settings.query.history_ports)
        journal = ClusterJournal(settings.query.journal_transitions, settings.query.journal_alerts)
        if (checkpoint / "history").is_dir():
            history.load(checkpoint / "history")
            journal.load(checkpoint / "journal")
        labels = {
            str(sender): SenderLabelView(label, float(confidence), str(source))
            for sender, label, confidence, source in document["sender_labels"]
        }
        return cls(SenderEmbedding.load(checkpoint / "embedding"), history, journal, labels,
                   int(document["windows_closed"]), checkpoint)

    def is_ground_truth(self, sender: str) -> bool:
        """True when the sender's label comes from a list or the Mirai fingerprint, not from its neighbours."""
        value = self.labels.get(sender)
        return value is not None and value.label is not None and value.source != "knn"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
        document["sender_labels"], document["windows_closed"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StateError(f"pipeline state {path} is missing or unreadable: {error}") from error
    return document
