"""Benchmark SenderIndex kinds: build, batched updates, query time and recall.

Vectors are clustered synthetic 50-dimensional rows (cluster centres plus
noise) standing in for trained sender vectors. Recall@k of HNSW and IVF is
measured against the exact flat index on the same queries. Run with
``.venv/bin/python -m bench.bench_index`` (20 k vectors) or ``--full``
(100 k and 500 k).
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from darkvec_stream.index import SenderIndex

DIMENSION = 50


def clustered(count: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIMENSION))
    noise = rng.normal(size=(count, DIMENSION)) * rng.uniform(0.2, 0.8, size=(count, 1))
    return (centres[rng.integers(0, clusters, count)] + noise).astype(np.float32)


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def run(size: int, queries: int, k: int, threads: int) -> list[str]:
    vectors = clustered(size, clusters=max(50, size // 200), seed=size)
    senders = [f"s{i}" for i in range(size)]
    query_rows = np.random.default_rng(1).choice(size, queries, replace=False)
    query_senders = [senders[i] for i in query_rows.tolist()]
    rows: list[str] = []
    exact_results: list[set[str]] = []
    for kind in ("flat", "hnsw", "ivf"):
        index = SenderIndex(DIMENSION, kind=kind, threads=threads, ivf_min_train_vectors=min(20_000, size))
        build_s = timed(lambda: index.upsert(senders, vectors))
        search_s = timed(lambda: setattr(run, "found", index.search(vectors[query_rows], k, query_senders)))
        found = [{s for s, _ in row} for row in run.found]  # type: ignore[attr-defined]
        if kind == "flat":
            exact_results = found
        recall = sum(len(a & b) for a, b in zip(found, exact_results)) / (k * queries)
        single_ms = 1000 * timed(lambda: [index.search(vectors[i : i + 1], k) for i in query_rows[:200].tolist()]) / 200
        batch = senders[:10_000]
        update_s = timed(lambda: index.upsert(batch, vectors[:10_000] + 0.01))
        remove_s = timed(lambda: index.remove(batch[:1000]))
        rows.append(f"{size} | {kind} | {build_s:.2f} | {search_s:.2f} | {1000 * search_s / queries:.3f} | "
                    f"{single_ms:.3f} | {recall:.4f} | {update_s:.3f} | {remove_s:.3f}")
        print(rows[-1], flush=True)
    return rows


def single_query_threads(size: int) -> None:
    vectors = clustered(size, clusters=100, seed=3)
    for threads in (1, 2):
        index = SenderIndex(DIMENSION, threads=threads)
        index.upsert([f"s{i}" for i in range(size)], vectors)
        single_ms = 1000 * timed(lambda: [index.search(vectors[i : i + 1], 5) for i in range(200)]) / 200
        batch_s = timed(lambda: index.search(vectors[:2000], 5))
        print(f"flat {size}, threads={threads}: single query {single_ms:.3f} ms, "
              f"2000 batched queries {batch_s:.3f} s", flush=True)
    faiss.omp_set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="100 k and 500 k vectors")
    parser.add_argument("--queries", type=int, default=5000, help="batched queries per kind (default 5000)")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (default 1)")
    arguments = parser.parse_args()
    sizes = [100_000, 500_000] if arguments.full else [20_000]
    print("vectors | kind | build s | batched search s | ms per query (batched) | ms per single query | "
          f"recall@{arguments.k} vs flat | upsert 10 k s | remove 1 k s")
    for size in sizes:
        run(size, arguments.queries, arguments.k, arguments.threads)
    single_query_threads(sizes[0])


if __name__ == "__main__":
    main()
