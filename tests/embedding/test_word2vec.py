"""The vectorised vocabulary update must leave gensim in exactly its own state."""

from __future__ import annotations

import numpy as np
from gensim.models import Word2Vec
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.embedding.word2vec import StreamingWord2Vec, build_model_from_arrays, cumulative_table

PARAMETERS = dict(vector_size=8, window=3, min_count=2, sg=1, hs=0, negative=5, sample=0, workers=1, seed=7,
                  sorted_vocab=0)


def _stock_cum_table(counts: np.ndarray) -> np.ndarray:
    model = Word2Vec(**PARAMETERS)
    model.wv.index_to_key = [f"w{i}" for i in range(len(counts))]
    model.wv.key_to_index = {key: i for i, key in enumerate(model.wv.index_to_key)}
    model.wv.allocate_vecattrs(attrs=["count"], types=[int])
    model.wv.expandos["count"][:] = counts
    model.make_cum_table()
    return model.cum_table


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=300))
def test_cum_table_bit_identical_to_gensim(counts: list[int]) -> None:
    array = np.array(counts, dtype=np.int64)
    assert np.array_equal(cumulative_table(array, 0.75), _stock_cum_table(array))


def test_cum_table_bit_identical_at_scale() -> None:
    rng = np.random.default_rng(3)
    counts = rng.zipf(1.3, 50_000).clip(1, 10**8).astype(np.int64)
    ours = cumulative_table(counts, 0.75)
    assert ours.dtype == np.uint32
    assert np.array_equal(ours, _stock_cum_table(counts))


def _batches() -> list[dict[str, int]]:
    return [
        {"a": 5, "b": 3, "c": 1, "d": 2},
        {"a": 1, "e": 4, "c": 1, "f": 1},          # c stays out (batch count 1), e joins
        {"c": 2, "g": 2, "b": 1, "h": 1, "a": 2},  # c joins now, h does not
        {"b": 4},                                   # no new words
    ]


def _corpus() -> list[list[str]]:
    return [["a", "b", "e", "a", "c", "g"] * 5, ["d", "e", "b", "a"] * 4, ["g", "c", "a"] * 6]


def test_vocab_update_matches_gensim_state() -> None:
    stock = Word2Vec(**PARAMETERS)
    fast = StreamingWord2Vec(**PARAMETERS)
    for number, batch in enumerate(_batches()):
        for model in (stock, fast):
            model.build_vocab_from_freq(dict(batch), update=number > 0)
        assert fast.wv.index_to_key == stock.wv.index_to_key
        assert fast.wv.key_to_index == stock.wv.key_to_index
        assert np.array_equal(fast.wv.expandos["count"], stock.wv.expandos["count"])
        assert np.array_equal(fast.wv.expandos["sample_int"], stock.wv.expandos["sample_int"])
        assert np.array_equal(fast.cum_table, stock.cum_table)
        assert np.array_equal(fast.wv.vectors, stock.wv.vectors)
        assert np.array_equal(fast.syn1neg, stock.syn1neg)


def test_training_after_update_matches_gensim() -> None:
    stock = Word2Vec(**PARAMETERS)
    fast = StreamingWord2Vec(**PARAMETERS)
    for number, batch in enumerate(_batches()[:3]):
        for model in (stock, fast):
            model.build_vocab_from_freq(dict(batch), update=number > 0)
            model.random = np.random.RandomState(number)
            model.train(_corpus(), total_examples=3, epochs=2, start_alpha=0.025, end_alpha=0.001)
    assert np.array_equal(fast.wv.vectors, stock.wv.vectors)
    assert np.array_equal(fast.syn1neg, stock.syn1neg)


def test_model_rebuilt_from_arrays_trains_identically() -> None:
    original = StreamingWord2Vec(**PARAMETERS)
    original.build_vocab_from_freq(_batches()[0])
    original.train(_corpus(), total_examples=3, epochs=1)
    rebuilt = build_model_from_arrays(
        PARAMETERS, list(original.wv.index_to_key), original.wv.expandos["count"].copy(),
        original.wv.vectors.copy(), original.syn1neg.copy(),
    )
    assert np.array_equal(rebuilt.cum_table, original.cum_table)
    for model in (original, rebuilt):
        model.random = np.random.RandomState(11)
        model.build_vocab_from_freq({"a": 1, "new": 3}, update=True)
        model.random = np.random.RandomState(12)
        model.train(_corpus() + [["new", "a"] * 4], total_examples=4, epochs=2, start_alpha=0.02, end_alpha=0.001)
    assert rebuilt.wv.index_to_key == original.wv.index_to_key
    assert np.array_equal(rebuilt.wv.vectors, original.wv.vectors)
    assert np.array_equal(rebuilt.syn1neg, original.syn1neg)
