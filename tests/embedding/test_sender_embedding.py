"""SenderEmbedding over real gensim: window cases, traps, determinism, persistence."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.errors import ConfigError, InputError, StateError
from darkvec_stream.windows.model import ClosedWindow, Sentence
from tests.embedding.synthetic import SyntheticTelescope, knn_accuracy, window_of


def small(**overrides: object) -> SenderEmbedding:
    settings = dict(vector_size=16, context=4, epochs_per_window=2, seed=3)
    settings.update(overrides)
    return SenderEmbedding(**settings)  # type: ignore[arg-type]


def test_first_window_creates_vocabulary() -> None:
    embedding = small()
    update = embedding.update(window_of(0, ("a", "b", "c", "a"), ("d", "b")))
    assert update.generation == 1
    assert set(update.added) == {"a", "b", "c", "d"}
    assert set(update.changed) == {"a", "b", "c", "d"}
    assert len(embedding) == 4
    assert update.words_seen == 6
    assert update.words_trained == 12  # 6 words x 2 epochs


def test_empty_window_is_noop() -> None:
    embedding = small()
    first = embedding.update(window_of(0))
    assert first.generation == 0
    assert len(embedding) == 0
    embedding.update(window_of(1, ("a", "b", "a")))
    before = embedding.vector("a")
    update = embedding.update(window_of(2))
    assert update.generation == 1
    assert update.changed == ()
    assert update.added == ()
    assert np.array_equal(embedding.vector("a"), before)


def test_window_without_new_senders() -> None:
    embedding = small()
    embedding.update(window_of(0, ("a", "b", "c", "a", "b")))
    counts_before = embedding._model.wv.expandos["count"].copy()  # noqa: SLF001
    update = embedding.update(window_of(1, ("b", "a", "b")))
    assert update.added == ()
    assert update.generation == 2
    assert set(update.changed) == {"a", "b"}
    counts = embedding._model.wv.expandos["count"]  # noqa: SLF001
    assert counts.tolist() == (counts_before + np.array([1, 2, 0])).tolist()


def test_absent_sender_vector_does_not_move() -> None:
    embedding = small()
    embedding.update(window_of(0, ("a", "b", "c", "a", "b")))
    before = embedding.vector("c")
    embedding.update(window_of(1, ("a", "b", "a")))
    assert np.array_equal(embedding.vector("c"), before)


def test_min_count_is_cumulative_across_windows() -> None:
    embedding = small(min_count=3)
    embedding.update(window_of(0, ("a", "b", "a", "b", "a", "x")))
    assert "x" not in embedding
    assert embedding.vector("x") is None
    assert embedding.last_seen_ns("x") is None
    assert embedding.pending_count("x") == 1

    update = embedding.update(window_of(1, ("a", "x", "b")))
    assert update.pending == ("x",)
    assert embedding.pending_count("x") == 2

    update = embedding.update(window_of(2, ("b", "x", "a")))
    assert update.added == ("x",)
    assert embedding.vector("x") is not None
    assert embedding.pending_count("x") == 0
    row = embedding._model.wv.key_to_index["x"]  # noqa: SLF001
    assert embedding._model.wv.expandos["count"][row] == 3  # noqa: SLF001


def test_no_sender_reaches_min_count() -> None:
    embedding = small(min_count=5)
    update = embedding.update(window_of(0, ("a", "b", "a")))
    assert update.generation == 0
    assert set(update.pending) == {"a", "b"}
    assert len(embedding) == 0
    assert embedding.keys() == []
    assert embedding.vectors(["a"])[1].shape == (0, 16)


@pytest.mark.parametrize("token", [7, 0, None, b"1.2.3.4", ""])
def test_non_string_token_rejected(token: object) -> None:
    window = window_of(0, ("a", token, "b"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="window 0"):
        small().update(window)


def test_unhashable_token_rejected() -> None:
    window = window_of(0, ("a", ["b"], "c"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unhashable"):
        small().update(window)


def test_integer_lookup_is_not_a_row() -> None:
    embedding = small()
    embedding.update(window_of(0, ("a", "b", "c")))
    assert embedding.vector(0) is None  # type: ignore[arg-type]
    assert 1 not in embedding


def test_long_sentence_trains_every_word() -> None:
    senders = tuple(f"10.0.{i // 250}.{i % 250}" for i in range(25_000))
    embedding = small(epochs_per_window=1, context=3)
    update = embedding.update(window_of(0, senders))
    # Chunks of 10,000 overlapping by the context: 0-9999, 9997-19996, 19994-24999.
    assert update.words_trained == 25_000 + 2 * 3
    assert len(embedding) == 25_000


def test_update_does_not_mutate_window() -> None:
    telescope = SyntheticTelescope(groups=3, group_size=10, words_per_group=60)
    embedding = small(min_count=2)
    for index in range(3):
        window = telescope.window(index)
        snapshot = copy.deepcopy(window)
        embedding.update(window)
        assert window == snapshot


def test_groups_are_separated() -> None:
    telescope = SyntheticTelescope(groups=6, group_size=15, words_per_group=300, seed=2)
    embedding = SenderEmbedding(vector_size=24, context=5, epochs_per_window=3, seed=1)
    for index in range(4):
        embedding.update(telescope.window(index))
    truth = telescope.truth()
    senders, vectors = embedding.vectors(list(truth))
    assert len(senders) == len(truth)
    assert knn_accuracy(vectors, [truth[s] for s in senders]) >= 0.9


def run_windows(embedding: SenderEmbedding, telescope: SyntheticTelescope, indexes: range) -> None:
    for index in indexes:
        embedding.update(telescope.window(index))


def assert_same_model(left: SenderEmbedding, right: SenderEmbedding) -> None:
    assert left.keys() == right.keys()
    assert left.generation == right.generation
    left_senders, left_vectors = left.vectors(left.keys())
    right_senders, right_vectors = right.vectors(right.keys())
    assert np.array_equal(left_vectors, right_vectors)
    assert np.array_equal(left._model.syn1neg, right._model.syn1neg)  # noqa: SLF001


def test_save_load_continues_bit_identically(tmp_path: Path) -> None:
    settings = dict(min_count=2, expiry_s=3 * 3600, compact_every_windows=3)
    uninterrupted = small(**settings)
    run_windows(uninterrupted, SyntheticTelescope(churn_per_window=0.3, seed=5), range(8))

    first = small(**settings)
    telescope = SyntheticTelescope(churn_per_window=0.3, seed=5)
    run_windows(first, telescope, range(4))
    first.save(tmp_path / "state")
    restored = SenderEmbedding.load(tmp_path / "state")
    assert restored.settings() == first.settings()
    run_windows(restored, telescope, range(4, 8))

    assert_same_model(uninterrupted, restored)
    for sender in restored.keys():
        assert restored.last_seen_ns(sender) == uninterrupted.last_seen_ns(sender)


def test_save_load_of_empty_embedding(tmp_path: Path) -> None:
    embedding = small(min_count=4)
    embedding.update(window_of(0, ("a", "b", "a")))
    embedding.save(tmp_path)
    restored = SenderEmbedding.load(tmp_path)
    assert len(restored) == 0
    assert restored.pending_count("a") == 2
    restored.update(window_of(1, ("a", "a", "b")))
    assert "a" in restored
    assert "b" not in restored


def test_two_runs_same_seed_identical() -> None:
    runs = []
    for _ in range(2):
        embedding = small()
        run_windows(embedding, SyntheticTelescope(seed=9), range(3))
        runs.append(embedding)
    assert_same_model(runs[0], runs[1])


def test_bad_settings_rejected() -> None:
    with pytest.raises(ConfigError, match="max_sentence_words"):
        SenderEmbedding(max_sentence_words=20_000)
    with pytest.raises(ConfigError, match="alpha"):
        SenderEmbedding(alpha_start=0.01, alpha_end=0.1)
    with pytest.raises(ConfigError, match="vector_size"):
        SenderEmbedding(vector_size=0)
    with pytest.raises(ConfigError, match="context"):
        SenderEmbedding(context=True)  # type: ignore[arg-type]


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    embedding = small()
    embedding.update(window_of(0, ("a", "b", "c", "a")))
    embedding.save(tmp_path)
    return tmp_path


def test_load_missing_file(saved: Path) -> None:
    (saved / "syn1neg.npy").unlink()
    with pytest.raises(StateError, match="syn1neg.npy"):
        SenderEmbedding.load(saved)


def test_load_wrong_shape(saved: Path) -> None:
    np.save(saved / "vectors.npy", np.zeros((3, 15), dtype=np.float32))
    with pytest.raises(StateError, match="vectors.npy"):
        SenderEmbedding.load(saved)


def test_load_wrong_dtype(saved: Path) -> None:
    np.save(saved / "counts.npy", np.zeros(3, dtype=np.float64))
    with pytest.raises(StateError, match="counts.npy"):
        SenderEmbedding.load(saved)


def test_load_refuses_pickled_array(saved: Path) -> None:
    np.save(saved / "counts.npy", np.array([{"x": 1}, None, 3], dtype=object), allow_pickle=True)
    with pytest.raises(StateError, match="counts.npy"):
        SenderEmbedding.load(saved)


def test_load_foreign_format(saved: Path) -> None:
    meta = json.loads((saved / "embedding.json").read_text())
    meta["format"] = "something-else/1"
    (saved / "embedding.json").write_text(json.dumps(meta))
    with pytest.raises(StateError, match="embedding.json"):
        SenderEmbedding.load(saved)


def test_load_duplicate_vocabulary(saved: Path) -> None:
    (saved / "vocabulary.json").write_text(json.dumps(["a", "a", "b"]))
    with pytest.raises(StateError, match="inconsistent vocabulary"):
        SenderEmbedding.load(saved)


def test_load_garbage_json(saved: Path) -> None:
    (saved / "pending.json").write_text("{not json")
    with pytest.raises(StateError, match="pending.json"):
        SenderEmbedding.load(saved)


def test_window_with_activity_sets_last_seen() -> None:
    telescope = SyntheticTelescope(groups=2, group_size=5, words_per_group=30)
    window = telescope.window(4)
    embedding = small()
    embedding.update(window)
    for sender, activity in window.activity.items():
        assert embedding.last_seen_ns(sender) == activity.last_ns


def test_sentence_service_is_not_a_token() -> None:
    window = ClosedWindow(0, 0, 10, (Sentence("telnet", ("a", "b")),), {}, 2, 2, 0)
    embedding = small()
    embedding.update(window)
    assert "telnet" not in embedding
