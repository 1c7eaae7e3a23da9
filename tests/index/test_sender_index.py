"""SenderIndex over real FAISS: exactness, id stability, rejection, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, InputError, StateError
from darkvec_stream.index import SenderIndex, normalise_rows

DIMENSION = 12


def random_vectors(count: int, seed: int = 0, dimension: int = DIMENSION) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)


def clustered_vectors(count: int, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIMENSION))
    return (centres[rng.integers(0, clusters, count)] + 0.3 * rng.normal(size=(count, DIMENSION))).astype(np.float32)


def names(count: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def brute_force(index_vectors: dict[str, np.ndarray], query: np.ndarray, k: int, exclude: str | None) -> list[str]:
    senders = [s for s in index_vectors if s != exclude]
    matrix = normalise_rows(np.array([index_vectors[s] for s in senders]))
    scores = matrix @ normalise_rows(query[None, :])[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [senders[i] for i in order.tolist()]


def test_flat_search_equals_brute_force() -> None:
    vectors = random_vectors(300)
    index = SenderIndex(DIMENSION)
    index.upsert(names(300), vectors)
    queries = random_vectors(20, seed=1)
    results = index.search(queries, k=7)
    truth = dict(zip(names(300), vectors))
    for query, found in zip(queries, results):
        assert [s for s, _ in found] == brute_force(truth, query, 7, None)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= score <= 1.0001 for score in scores)


def test_cosine_scores_are_exact() -> None:
    index = SenderIndex(2)
    index.upsert(["x", "y"], np.array([[3.0, 0.0], [1.0, 1.0]], dtype=np.float32))
    [[(first, score_x), (second, score_y)]] = index.search(np.array([[2.0, 0.0]]), k=2)
    assert (first, second) == ("x", "y")
    assert score_x == pytest.approx(1.0, abs=1e-6)
    assert score_y == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_exclude_self() -> None:
    vectors = random_vectors(50)
    index = SenderIndex(DIMENSION)
    index.upsert(names(50), vectors)
    results = index.search(vectors[:10], k=5, exclude_self=names(10))
    for sender, found in zip(names(10), results):
        assert len(found) == 5
        assert sender not in [s for s, _ in found]


def test_upsert_replaces_single_entry() -> None:
    index = SenderIndex(DIMENSION)
    index.upsert(names(10), random_vectors(10))
    ids = {s: index.id_of(s) for s in names(10)}
    index.upsert(["s3", "s4", "new"], random_vectors(3, seed=5))
    assert len(index) == 11
    assert index._index.ntotal == 11  # noqa: SLF001
    assert {s: index.id_of(s) for s in names(10)} == ids
    assert index.id_of("new") == 10
    found = index.search(random_vectors(1, seed=5)[:1], k=11)[0]
    assert sorted(s for s, _ in found) == sorted(names(10) + ["new"])
    assert found[0][0] == "s3"


def test_remove_and_readd_gets_new_id() -> None:
    index = SenderIndex(DIMENSION)
    index.upsert(names(5), random_vectors(5))
    assert index.remove(["s1", "unknown"]) == 1
    assert "s1" not in index
    assert index.id_of("s1") is None
    index.upsert(["s1"], random_vectors(1, seed=3))
    assert index.id_of("s1") == 5


def test_search_never_pads_with_minus_one() -> None:
    index = SenderIndex(DIMENSION)
    index.upsert(names(3), random_vectors(3))
    [found] = index.search(random_vectors(1, seed=2), k=10)
    assert sorted(s for s, _ in found) == names(3)
    [alone] = index.search(random_vectors(1, seed=2), k=10, exclude_self=["s0"])
    assert sorted(s for s, _ in alone) == ["s1", "s2"]


def test_search_empty_index() -> None:
    assert SenderIndex(DIMENSION).search(random_vectors(2), k=3) == [[], []]


@pytest.mark.parametrize("bad", [np.zeros(DIMENSION), np.full(DIMENSION, np.nan), np.full(DIMENSION, np.inf)])
def test_bad_vectors_rejected_with_sender(bad: np.ndarray) -> None:
    index = SenderIndex(DIMENSION)
    vectors = random_vectors(3)
    vectors[1] = bad
    with pytest.raises(InputError, match="s1"):
        index.upsert(names(3), vectors)
    assert len(index) == 0
    with pytest.raises(InputError, match="row 0"):
        index.search(bad[None, :], k=1)


def test_shape_and_argument_errors() -> None:
    index = SenderIndex(DIMENSION)
    with pytest.raises(InputError, match="one 12-dimensional vector per sender"):
        index.upsert(names(2), random_vectors(3))
    with pytest.raises(InputError, match="same sender twice"):
        index.upsert(["a", "a"], random_vectors(2))
    with pytest.raises(InputError, match="k=0"):
        index.search(random_vectors(1), k=0)
    with pytest.raises(InputError, match="dimensions"):
        index.search(random_vectors(1, dimension=5), k=1)
    with pytest.raises(ConfigError, match="annoy"):
        SenderIndex(DIMENSION, kind="annoy")


def test_hnsw_marks_stale_then_rebuilds() -> None:
    index = SenderIndex(DIMENSION, kind="hnsw", hnsw_stale_share=0.3)
    index.upsert(names(100), random_vectors(100))
    index.upsert(names(20), random_vectors(20, seed=1))
    assert index.stale_entries == 20
    truth = dict(zip(names(100), random_vectors(100)))
    truth.update(zip(names(20), random_vectors(20, seed=1)))
    for found in index.search(random_vectors(30, seed=4), k=10):
        senders = [s for s, _ in found]
        assert len(senders) == len(set(senders)) == 10
    index.remove(names(20, prefix="s")[:5])
    index.upsert(names(30)[10:30], random_vectors(20, seed=2))
    assert index.stale_entries == 0  # 45 stale of 145 crossed 30 %: rebuilt
    assert index._index.ntotal == 95  # noqa: SLF001
    assert all(s not in index for s in names(5))


def test_hnsw_search_skips_many_stale_entries() -> None:
    index = SenderIndex(DIMENSION, kind="hnsw", hnsw_stale_share=1.0)
    vectors = random_vectors(40)
    index.upsert(names(40), vectors)
    for seed in range(5):
        index.upsert(names(40), random_vectors(40, seed=seed + 10))
    assert index.stale_entries == 200
    [found] = index.search(vectors[:1], k=40)
    assert sorted(s for s, _ in found) == sorted(names(40))


def test_ivf_trains_and_keeps_recall() -> None:
    vectors = clustered_vectors(3000)
    index = SenderIndex(DIMENSION, kind="ivf", ivf_min_train_vectors=2000, ivf_nprobe=16)
    index.upsert(names(1000), vectors[:1000])
    assert index.searches_exactly
    index.upsert(names(3000)[1000:], vectors[1000:])
    assert not index.searches_exactly
    index.upsert(names(200), clustered_vectors(200, seed=9))  # in-place update_vectors
    assert len(index) == 3000
    assert index._index.ntotal == 3000  # noqa: SLF001
    index.remove(names(10))
    exact = SenderIndex(DIMENSION)
    live = names(3000)[10:]
    exact_vectors = np.concatenate([clustered_vectors(200, seed=9)[10:], vectors[200:]])
    exact.upsert(live, exact_vectors)
    queries = clustered_vectors(100, seed=3)
    hits = 0
    for approximate, truth in zip(index.search(queries, k=10), exact.search(queries, k=10)):
        hits += len({s for s, _ in approximate} & {s for s, _ in truth})
        assert all(s not in names(10) for s, _ in approximate)
    assert hits / 1000 >= 0.9


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_same_results(tmp_path: Path, kind: str) -> None:
    index = SenderIndex(DIMENSION, kind=kind, ivf_min_train_vectors=500, hnsw_stale_share=0.9)
    index.upsert(names(800), clustered_vectors(800))
    index.upsert(names(50), clustered_vectors(50, seed=1))
    index.remove(["s60", "s61"])
    index.save(tmp_path)
    restored = SenderIndex.load(tmp_path)
    assert restored.settings() == index.settings()
    assert restored.senders() == index.senders()
    assert all(restored.id_of(s) == index.id_of(s) for s in index.senders())
    queries = clustered_vectors(20, seed=7)
    assert restored.search(queries, k=5) == index.search(queries, k=5)
    restored.upsert(["later"], random_vectors(1))
    assert restored.id_of("later") == 800


def test_load_errors(tmp_path: Path) -> None:
    index = SenderIndex(DIMENSION)
    index.upsert(names(5), random_vectors(5))
    index.save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "ids": [1]}))
    with pytest.raises(StateError, match="index.json"):
        SenderIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps(meta))
    (tmp_path / "faiss.index").write_bytes(b"not an index")
    with pytest.raises(StateError, match="faiss.index"):
        SenderIndex.load(tmp_path)
    (tmp_path / "faiss.index").unlink()
    with pytest.raises(StateError, match="faiss.index"):
        SenderIndex.load(tmp_path)


operations = st.lists(
    st.tuples(st.sampled_from(["upsert", "remove"]), st.lists(st.integers(0, 15), min_size=1, max_size=6, unique=True),
              st.integers(0, 1000)),
    min_size=1, max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(operations, st.sampled_from(["flat", "hnsw"]))
def test_operations_match_dictionary_model(ops: list[tuple[str, list[int], int]], kind: str) -> None:
    index = SenderIndex(DIMENSION, kind=kind, hnsw_stale_share=0.5)
    model: dict[str, np.ndarray] = {}
    for action, members, seed in ops:
        senders = [f"s{m}" for m in members]
        if action == "upsert":
            vectors = random_vectors(len(senders), seed=seed)
            index.upsert(senders, vectors)
            model.update(zip(senders, vectors))
        else:
            assert index.remove(senders) == len([s for s in senders if s in model])
            for sender in senders:
                model.pop(sender, None)
        assert len(index) == len(model)
    assert sorted(index.senders()) == sorted(model)
    for sender, vector in model.items():
        [found] = index.search(vector[None, :], k=len(model), exclude_self=[sender])
        senders = [s for s, _ in found]
        assert sorted(senders) == sorted(s for s in model if s != sender)
        if kind == "flat" and senders:
            best = brute_force(model, vector, 1, sender)[0]
            expected = float(normalise_rows(model[best][None, :])[0] @ normalise_rows(vector[None, :])[0])
            assert found[0][1] == pytest.approx(expected, abs=1e-5)  # ties may pick either sender
