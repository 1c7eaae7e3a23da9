"""Benchmark the query API's snapshot publication against the window work it follows.

A real SenderEmbedding (vector size 50, context 5, one pass), SenderHistory
and ClusterJournal are filled with N synthetic senders. Then one window with
a tenth of them active, 10 packets each, is processed (embedding update plus
history: the cheapest part of a pipeline window, which also labels and
clusters), and the snapshot is published
incrementally (the window's senders) and in full (after a restore). The same
run times one neighbour query, one evidence query and one /senders/{ip}
response, and a single FAISS query with one and two OpenMP threads. Run with
``.venv/bin/python -m bench.bench_query`` (10 k senders) or ``--full``
(10 k and 100 k).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any, Callable

import faiss
import numpy as np

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.query import ClusterJournal, SenderHistory
from darkvec_stream.query.api import QueryApi
from darkvec_stream.query.snapshot import SnapshotPublisher
from darkvec_stream.query.state import SenderLabelView
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence

HOUR_NS = 3_600_000_000_000
MAX_SENTENCE = 10_000
CLUSTERS = 100
PACKETS_PER_SENDER = 10


def synthetic_window(index: int, senders: list[str], rng: np.random.Generator) -> ClosedWindow:
    """Build one window in which ``senders`` each send 10 packets to one of four services."""
    start = index * HOUR_NS
    services = ("telnet", "http", "ssh", "smb")
    groups = rng.integers(0, len(services), len(senders))
    activity: dict[str, SenderActivity] = {}
    streams: dict[str, list[str]] = {service: [] for service in services}
    for sender, group in zip(senders, groups.tolist()):
        activity[sender] = SenderActivity(packets=PACKETS_PER_SENDER, first_ns=start + 1, last_ns=start + 2,
                                          dst_ports={22 + group: PACKETS_PER_SENDER}, services={services[group]})
        streams[services[group]].append(sender)
    sentences = []
    for service, tokens in streams.items():
        # Each sender appears PACKETS_PER_SENDER times in random order, as
        # interleaved scans do; sentences are cut at gensim's 10,000 words.
        for _ in range(PACKETS_PER_SENDER):
            order = rng.permutation(len(tokens))
            shuffled = [tokens[i] for i in order.tolist()]
            for begin in range(0, len(shuffled), MAX_SENTENCE):
                sentences.append(Sentence(service, tuple(shuffled[begin:begin + MAX_SENTENCE])))
    packets = sum(a.packets for a in activity.values())
    return ClosedWindow(index, start, start + HOUR_NS, tuple(sentences), activity, packets, len(activity), 0)


def timed(action: Callable[[], Any], repeats: int = 1) -> float:
    """Median wall seconds of ``repeats`` runs."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def build_state(size: int, seed: int) -> tuple[SenderEmbedding, SenderHistory, ClusterJournal, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    senders = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(size)]
    embedding = SenderEmbedding(vector_size=50, context=5, epochs_per_window=1, seed=seed)
    history = SenderHistory()
    first = synthetic_window(0, senders, rng)
    embedding.update(first)
    history.observe(first)
    labels = {sender: SenderLabelView(None if i % 3 else "mirai", 0.6, "knn") for i, sender in enumerate(senders)}
    for sender in senders[::50]:
        labels[sender] = SenderLabelView("scanner", 1.0, "lists")
    journal = ClusterJournal()
    journal.window_index = 0
    journal.sender_cluster = {sender: (f"C{i % CLUSTERS:06d}", 0.5) for i, sender in enumerate(senders)}
    journal.profiles = {f"C{c:06d}": {"size": size // CLUSTERS, "silhouette": 0.5} for c in range(CLUSTERS)}
    return embedding, history, journal, labels


def single_query_ms(threads: int, size: int) -> float:
    """Median ms of one k=11 query on a flat inner-product index, from a fresh thread."""
    vectors = np.random.default_rng(3).normal(size=(size, 50)).astype(np.float32)
    faiss.normalize_L2(vectors)
    index = faiss.IndexFlatIP(50)
    index.add(vectors)
    result: list[float] = []

    def measure() -> None:
        faiss.omp_set_num_threads(threads)
        result.append(1000 * timed(lambda: [index.search(vectors[i:i + 1], 11) for i in range(50)]) / 50)

    worker = threading.Thread(target=measure)
    worker.start()
    worker.join()
    return result[0]


def run(size: int, seed: int) -> dict[str, float]:
    embedding, history, journal, labels = build_state(size, seed)
    publisher = SnapshotPublisher()
    publisher.publish(embedding, history, journal, labels, 1, None)
    rng = np.random.default_rng(seed + 1)
    active = [embedding.keys()[i] for i in sorted(rng.choice(len(embedding), size // 10, replace=False).tolist())]
    window = synthetic_window(1, active, rng)

    def process_window() -> None:
        embedding.update(window)
        history.observe(window)

    figures = {"senders": float(len(embedding)), "window_s": timed(process_window)}
    changed = set(window.activity)
    figures["publish_incremental_s"] = timed(
        lambda: publisher.publish(embedding, history, journal, labels, 2, changed), repeats=5)
    figures["publish_full_s"] = timed(lambda: publisher.publish(embedding, history, journal, labels, 2, None),
                                      repeats=3)
    snapshot = publisher.current
    assert snapshot is not None
    sample = active[:200]
    figures["evidence_first_ms"] = 1000 * timed(lambda: snapshot.evidence(sample[0], 7))
    figures["neighbours_ms"] = 1000 * timed(lambda: [snapshot.nearest(s, 10) for s in sample]) / len(sample)
    figures["evidence_ms"] = 1000 * timed(lambda: [snapshot.evidence(s, 7) for s in sample]) / len(sample)
    api = QueryApi(publisher)
    figures["sender_answer_ms"] = 1000 * timed(lambda: [api.handle("GET", f"/senders/{s}") for s in sample]) / len(
        sample)
    figures["faiss_query_1_thread_ms"] = single_query_ms(1, size)
    figures["faiss_query_2_threads_ms"] = single_query_ms(2, size)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run 10 k and 100 k senders (default: 10 k only)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    args = parser.parse_args()
    sizes = (10_000, 100_000) if args.full else (10_000,)
    print("| senders | window s | publish incr. s | incr. / window | publish full s | full / window | "
          "/senders/{ip} ms | neighbours ms | evidence ms (first) | FAISS 1 thr ms | FAISS 2 thr ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        f = run(size, args.seed)
        print(f"| {int(f['senders'])} | {f['window_s']:.3f} | {f['publish_incremental_s']:.4f} | "
              f"{f['publish_incremental_s'] / f['window_s']:.3f} | {f['publish_full_s']:.4f} | "
              f"{f['publish_full_s'] / f['window_s']:.3f} | {f['sender_answer_ms']:.2f} | {f['neighbours_ms']:.2f} | "
              f"{f['evidence_ms']:.2f} ({f['evidence_first_ms']:.1f}) | {f['faiss_query_1_thread_ms']:.2f} | "
              f"{f['faiss_query_2_threads_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
