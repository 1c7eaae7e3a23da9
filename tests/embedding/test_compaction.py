"""Expiry by compaction: survivors intact, removed senders gone, memory bounded."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import psutil
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.embedding.corpus import chunk_sentences
from darkvec_stream.embedding.pending import PendingSenders
from tests.embedding.synthetic import HOUR_NS, SyntheticTelescope, window_of


def embedding_with_two_eras() -> SenderEmbedding:
    """Senders a..d seen in window 0 only; e..h seen in windows 0 and 5."""
    embedding = SenderEmbedding(vector_size=8, context=3, epochs_per_window=1, seed=2, expiry_s=2 * 3600,
                                compact_every_windows=1000, compact_expired_share=1.0)
    embedding.update(window_of(0, ("a", "b", "c", "d", "a", "e", "f"), ("g", "h", "e")))
    embedding.update(window_of(5, ("e", "f", "g", "h", "e")))
    return embedding


def test_compact_keeps_survivor_state() -> None:
    embedding = embedding_with_two_eras()
    model = embedding._model  # noqa: SLF001
    survivors = ["e", "f", "g", "h"]
    rows = [model.wv.key_to_index[s] for s in survivors]
    vectors = model.wv.vectors[rows].copy()
    syn1neg = model.syn1neg[rows].copy()
    counts = model.wv.expandos["count"][rows].copy()
    last_seen = [embedding.last_seen_ns(s) for s in survivors]

    removed = embedding.compact(6 * HOUR_NS)

    assert sorted(removed) == ["a", "b", "c", "d"]
    assert embedding.keys() == survivors
    model = embedding._model  # noqa: SLF001
    assert np.array_equal(embedding.vectors(survivors)[1], vectors)
    assert np.array_equal(model.syn1neg, syn1neg)
    assert np.array_equal(model.wv.expandos["count"], counts)
    assert [embedding.last_seen_ns(s) for s in survivors] == last_seen
    assert len(model.cum_table) == 4


def test_removed_senders_unreachable() -> None:
    embedding = embedding_with_two_eras()
    embedding.compact(6 * HOUR_NS)
    for sender in "abcd":
        assert sender not in embedding
        assert embedding.vector(sender) is None
        assert embedding.last_seen_ns(sender) is None
    present, matrix = embedding.vectors(list("abcdefgh"))
    assert present == list("efgh")
    assert matrix.shape == (4, 8)
    assert len(embedding._model.wv.vectors) == 4  # noqa: SLF001
    assert len(embedding._model.syn1neg) == 4  # noqa: SLF001


def test_compact_nothing_expired() -> None:
    embedding = embedding_with_two_eras()
    keys = embedding.keys()
    assert embedding.compact(HOUR_NS) == []
    assert embedding.keys() == keys


def test_compact_everything_expired_then_restart() -> None:
    embedding = embedding_with_two_eras()
    assert len(embedding.compact(100 * HOUR_NS)) == 8
    assert len(embedding) == 0
    update = embedding.update(window_of(100, ("x", "y", "x")))
    assert set(update.added) == {"x", "y"}
    assert embedding.keys() == ["x", "y"]


def test_vocabulary_grows_after_compaction_and_load(tmp_path: Path) -> None:
    embedding = embedding_with_two_eras()
    embedding.compact(6 * HOUR_NS)
    update = embedding.update(window_of(6, ("e", "new1", "f", "new2")))
    assert update.added == ("new1", "new2")
    assert embedding.keys() == ["e", "f", "g", "h", "new1", "new2"]

    embedding.save(tmp_path)
    restored = SenderEmbedding.load(tmp_path)
    for model in (embedding, restored):
        update = model.update(window_of(7, ("new3", "e", "a", "new1")))
        assert update.added == ("new3", "a")
    assert restored.keys() == embedding.keys()
    assert np.array_equal(restored.vectors(restored.keys())[1], embedding.vectors(embedding.keys())[1])


def test_compaction_triggered_by_window_count() -> None:
    embedding = SenderEmbedding(vector_size=8, context=3, epochs_per_window=1, expiry_s=3600,
                                compact_every_windows=3, compact_expired_share=1.0)
    results = [embedding.update(window_of(i, (f"old{i}", "x", f"old{i}x"))) for i in range(3)]
    assert results[0].removed == ()
    assert results[1].removed == ()
    # Window 2 ends at 3 h; senders of window 0 (last seen before 1 h) are expired.
    assert set(results[2].removed) == {"old0", "old0x", "old1", "old1x"}
    assert "x" in embedding


def test_compaction_triggered_by_expired_share() -> None:
    embedding = SenderEmbedding(vector_size=8, context=3, epochs_per_window=1, expiry_s=3600,
                                compact_every_windows=1000, compact_expired_share=0.5)
    embedding.update(window_of(0, ("a", "b", "c", "d", "e")))
    update = embedding.update(window_of(3, ("e", "f")))
    assert embedding.expired_share(4 * HOUR_NS) == 0.0
    assert set(update.removed) == {"a", "b", "c", "d"}
    assert update.changed == ("e", "f") or set(update.changed) <= {"e", "f"}


def test_pending_senders_expire_and_stay_bounded() -> None:
    pending = PendingSenders(max_senders=3)
    for number, sender in enumerate("abcde"):
        pending.add(sender, 1, seen_ns=number)
    assert pending.expire(cutoff_ns=1) == ["a", "b"]
    assert len(pending) == 3
    pending.add("f", 2, seen_ns=10)
    assert pending.expire(cutoff_ns=0) == ["c"]
    assert [s for s, _, _ in pending.items()] == ["d", "e", "f"]


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=200),
    max_words=st.integers(min_value=2, max_value=40),
    overlap=st.integers(min_value=0, max_value=39),
)
def test_chunks_cover_every_context_pair(length: int, max_words: int, overlap: int) -> None:
    overlap = min(overlap, max_words - 1)
    sentence = tuple(str(i) for i in range(length))
    chunks = chunk_sentences([sentence], max_words, overlap)
    assert all(0 < len(chunk) <= max_words for chunk in chunks)
    assert (not chunks) == (length == 0)
    covered = set()
    for chunk in chunks:
        positions = [int(token) for token in chunk]
        assert positions == list(range(positions[0], positions[-1] + 1))
        covered.update((i, j) for i in positions for j in positions if 0 < j - i <= overlap)
    assert covered == {(i, j) for i in range(length) for j in range(i + 1, min(length, i + overlap + 1))}
    assert {int(t) for chunk in chunks for t in chunk} == set(range(length))


def test_churn_keeps_vocabulary_and_rss_flat() -> None:
    telescope = SyntheticTelescope(groups=10, group_size=40, words_per_group=200, noise_senders=200,
                                   churn_per_window=0.2, seed=4)
    embedding = SenderEmbedding(vector_size=32, context=5, epochs_per_window=1, expiry_s=6 * 3600,
                                compact_every_windows=6)
    process = psutil.Process()
    sizes = []
    for index in range(260):
        embedding.update(telescope.window(index))
        sizes.append(len(embedding))
        if index == 59:
            gc.collect()
            rss_after_warmup = process.memory_info().rss
    gc.collect()
    rss_end = process.memory_info().rss

    # Each window brings at most 10 x 40 members and 200 noise senders. With a
    # 6-window horizon and a compaction every 6 windows, senders of at most
    # 12 windows can be live.
    assert max(sizes[60:]) <= 12 * (10 * 40 + 200)
    assert max(sizes[60:]) < 1.5 * min(sizes[60:]) + 1000
    assert embedding.generation == 260
    assert rss_end - rss_after_warmup < 40 * 2**20
