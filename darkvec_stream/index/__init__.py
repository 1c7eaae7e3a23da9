"""FAISS index of sender vectors for cosine nearest-neighbour search.

``SenderIndex`` contains one entry per live sender; ``apply_embedding_update``
keeps it in step with ``darkvec_stream.embedding.SenderEmbedding``.
"""

from darkvec_stream.index.sender_index import INDEX_KINDS, SenderIndex, normalise_rows
from darkvec_stream.index.update import apply_embedding_update, rebuild_from_embedding

__all__ = ["INDEX_KINDS", "SenderIndex", "apply_embedding_update", "normalise_rows", "rebuild_from_embedding"]
