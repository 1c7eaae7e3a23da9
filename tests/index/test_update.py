"""The index follows a real SenderEmbedding through growth, training and expiry."""

from __future__ import annotations

import numpy as np

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.index import SenderIndex, apply_embedding_update, normalise_rows, rebuild_from_embedding
from tests.embedding.synthetic import SyntheticTelescope


def test_index_tracks_embedding_with_churn() -> None:
    telescope = SyntheticTelescope(groups=4, group_size=12, words_per_group=80, noise_senders=40,
                                   churn_per_window=0.25, seed=8)
    embedding = SenderEmbedding(vector_size=16, context=4, epochs_per_window=1, expiry_s=3 * 3600,
                                compact_every_windows=2)
    index = SenderIndex(16)
    removed_total = 0
    for window_index in range(10):
        update = embedding.update(telescope.window(window_index))
        upserted, removed = apply_embedding_update(index, embedding, update)
        removed_total += removed
        assert upserted == len(update.changed)
        assert sorted(index.senders()) == sorted(embedding.keys())

    assert removed_total > 0
    senders, vectors = embedding.vectors(embedding.keys())
    stored = index._live_vectors(senders)  # noqa: SLF001
    assert np.allclose(stored, normalise_rows(vectors), atol=1e-6)
    for sender, found in zip(senders, index.search(vectors, k=5, exclude_self=senders)):
        assert all(neighbour in embedding for neighbour, _ in found)
        assert sender not in [neighbour for neighbour, _ in found]


def test_rebuild_from_embedding_drops_strays() -> None:
    telescope = SyntheticTelescope(groups=2, group_size=6, words_per_group=30)
    embedding = SenderEmbedding(vector_size=8, context=3, epochs_per_window=1)
    embedding.update(telescope.window(0))
    index = SenderIndex(8, kind="hnsw")
    index.upsert(["stray"], np.ones((1, 8), dtype=np.float32))
    rebuild_from_embedding(index, embedding)
    assert sorted(index.senders()) == sorted(embedding.keys())
