"""Keep a ``SenderIndex`` in step with the embedding after each window.

The embedding reports which senders changed or were removed; this helper
applies exactly that to the index, in two batched calls. It does not decide
what changes.
"""

from __future__ import annotations

from darkvec_stream.embedding import EmbeddingUpdate, SenderEmbedding
from darkvec_stream.index.sender_index import SenderIndex


def apply_embedding_update(index: SenderIndex, embedding: SenderEmbedding, update: EmbeddingUpdate) -> tuple[int, int]:
    """Remove the update's removed senders, upsert its changed ones; return (upserted, removed)."""
    removed = index.remove(update.removed)
    senders, vectors = embedding.vectors(update.changed)
    index.upsert(senders, vectors)
    return len(senders), removed


def rebuild_from_embedding(index: SenderIndex, embedding: SenderEmbedding) -> None:
    """Make the index hold exactly the embedding's senders (after a restore or a mismatch)."""
    live = set(embedding.keys())
    index.remove([sender for sender in index.senders() if sender not in live])
    senders, vectors = embedding.vectors(embedding.keys())
    index.upsert(senders, vectors)
