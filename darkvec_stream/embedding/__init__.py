"""Incremental Word2Vec sender embedding with expiry of idle senders.

See ``SenderEmbedding`` for the model and ``EmbeddingUpdate`` for what each
window reports to the index and the later stages.
"""

from darkvec_stream.embedding.sender_embedding import EmbeddingUpdate, SenderEmbedding

__all__ = ["EmbeddingUpdate", "SenderEmbedding"]
