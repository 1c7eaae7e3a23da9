"""Benchmark the per-window embedding update against bare gensim training.

Measures, at several vocabulary sizes: the end-to-end ``SenderEmbedding.update``
time against ``Word2Vec.train`` alone on the same sentences and model state,
gensim's stock ``build_vocab_from_freq(update=True)`` and ``make_cum_table``
against the vectorised versions, and compaction time. Run with
``.venv/bin/python -m bench.bench_embedding`` (small) or ``--full``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
from gensim.models import Word2Vec

from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.embedding.corpus import chunk_sentences
from darkvec_stream.embedding.word2vec import cumulative_table
from darkvec_stream.windows.model import ClosedWindow, Sentence

HOUR_NS = 3_600_000_000_000
GROUP_SIZE = 50


def sender_names(start: int, count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(start, start + count)]


def make_window(index: int, senders: list[str], words: int, services: int, rng: np.random.Generator) -> ClosedWindow:
    """Sentences where each service is hit by a few groups of ``GROUP_SIZE`` senders."""
    groups = max(1, len(senders) // GROUP_SIZE)
    sentences = []
    per_service = words // services
    for service in range(services):
        chosen = rng.integers(0, groups, 4)
        rows = (chosen[rng.integers(0, 4, per_service)] * GROUP_SIZE + rng.integers(0, GROUP_SIZE, per_service))
        rows = np.minimum(rows, len(senders) - 1)
        keep = np.concatenate([[True], rows[1:] != rows[:-1]])
        sentences.append(Sentence(f"service{service}", tuple(senders[i] for i in rows[keep].tolist())))
    total = sum(len(s.senders) for s in sentences)
    return ClosedWindow(index, index * HOUR_NS, (index + 1) * HOUR_NS, tuple(sentences), {}, total, 0, 0)


def warm_embedding(vocabulary: int, settings: dict[str, object]) -> SenderEmbedding:
    """Build an embedding of ``vocabulary`` senders, trained once on them."""
    senders = sender_names(0, vocabulary)
    sentences = tuple(Sentence(f"s{i}", tuple(senders[i : i + 10_000])) for i in range(0, vocabulary, 10_000))
    first = ClosedWindow(0, 0, HOUR_NS, sentences, {}, vocabulary, vocabulary, 0)
    # One epoch is enough to warm the state; windows then train with the
    # configured epochs.
    embedding = SenderEmbedding(**{**settings, "epochs_per_window": 1})  # type: ignore[arg-type]
    embedding.update(first)
    embedding.epochs_per_window = int(settings["epochs_per_window"])  # type: ignore[call-overload]
    return embedding


def measure(vocabulary: int, words: int, new_share: float, repeats: int, settings: dict[str, object]) -> dict[str, float]:
    rng = np.random.default_rng(vocabulary)
    embedding = warm_embedding(vocabulary, settings)
    results: dict[str, list[float]] = {key: [] for key in
                                       ("update_s", "vocabulary_s", "training_s", "gensim_train_s", "bare_train_s",
                                        "stock_vocab_s", "stock_cum_table_s", "numpy_cum_table_s")}
    next_sender = vocabulary
    for repeat in range(repeats):
        new_count = int(words * new_share / 3)
        senders = sender_names(0, vocabulary) + sender_names(next_sender, new_count)
        next_sender += new_count
        window = make_window(repeat + 1, senders, words, services=20, rng=rng)
        model = embedding._model  # noqa: SLF001
        assert model is not None

        # Stock gensim on a copy of the state before the update.
        stock = Word2Vec(**embedding._model_parameters())  # noqa: SLF001
        stock.wv = copy.deepcopy(model.wv)
        stock.syn1neg = model.syn1neg.copy()
        stock.cum_table = model.cum_table.copy()
        batch = dict(zip(*np.unique([t for s in window.sentences for t in s.senders], return_counts=True)))
        batch = {str(k): int(v) for k, v in batch.items()}
        started = time.perf_counter()
        stock.build_vocab_from_freq(batch, update=True)
        results["stock_vocab_s"].append(time.perf_counter() - started)
        started = time.perf_counter()
        stock.make_cum_table()
        results["stock_cum_table_s"].append(time.perf_counter() - started)
        started = time.perf_counter()
        ours = cumulative_table(stock.wv.expandos["count"], stock.ns_exponent)
        results["numpy_cum_table_s"].append(time.perf_counter() - started)
        assert np.array_equal(ours, stock.cum_table)
        del stock

        started = time.perf_counter()
        update = embedding.update(window)
        results["update_s"].append(time.perf_counter() - started)
        results["vocabulary_s"].append(update.vocabulary_s)
        results["training_s"].append(update.training_s)
        results["gensim_train_s"].append(update.gensim_train_s)

        # Bare gensim training on the same sentences and the updated model.
        chunks = chunk_sentences((s.senders for s in window.sentences), embedding.max_sentence_words,
                                 embedding.context)
        model = embedding._model  # noqa: SLF001
        saved = (model.wv.vectors.copy(), model.syn1neg.copy())
        started = time.perf_counter()
        model.train(chunks, total_examples=len(chunks), total_words=sum(map(len, chunks)),
                    epochs=embedding.epochs_per_window, start_alpha=embedding.alpha_start,
                    end_alpha=embedding.alpha_end)
        results["bare_train_s"].append(time.perf_counter() - started)
        model.wv.vectors, model.syn1neg = saved

    summary = {key: float(np.median(values)) for key, values in results.items()}
    summary["words"] = words
    summary["vocabulary"] = len(embedding)
    # Same-call ratio: wall time of update() over the gensim train() call
    # inside it, free of the noise between two separate runs.
    summary["ratio"] = float(np.median(np.array(results["update_s"]) / np.array(results["gensim_train_s"])))
    summary["ratio_separate"] = summary["update_s"] / summary["bare_train_s"]
    summary["words_per_s"] = words * embedding.epochs_per_window / summary["update_s"]
    return summary


def measure_compaction(vocabulary: int, settings: dict[str, object]) -> float:
    embedding = warm_embedding(vocabulary, {**settings, "expiry_s": 3600})
    # Mark 30 % of senders as recently seen so 70 % expire.
    survivors = np.random.default_rng(1).random(vocabulary) < 0.3
    embedding._last_seen_ns[survivors] = 10 * HOUR_NS  # noqa: SLF001
    started = time.perf_counter()
    embedding.compact(10 * HOUR_NS + 1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="vocabularies of 10 k, 100 k and 500 k senders")
    parser.add_argument("--words", type=int, default=50_000, help="tokens per window (default 50,000)")
    parser.add_argument("--repeats", type=int, default=3, help="windows measured per size (median reported)")
    parser.add_argument("--workers", type=int, default=1, help="gensim training threads")
    parser.add_argument("--quality", action="store_true",
                        help="instead, compare context, vector size and epochs by 5-NN accuracy")
    parser.add_argument("--windows", type=int, default=12, help="windows per quality run (default 12)")
    parser.add_argument("--seeds", type=int, default=2, help="data sets per quality setting (default 2)")
    arguments = parser.parse_args()
    if arguments.quality:
        quality(arguments.windows, arguments.seeds)
        return
    sizes = [10_000, 100_000, 500_000] if arguments.full else [10_000, 50_000]
    settings = dict(vector_size=50, context=25, epochs_per_window=3, workers=arguments.workers, seed=1)
    print("vocabulary | words | update s | vocabulary s | gensim train() inside s | update / train() | "
          "separate bare train() s | update / bare | words/s | stock build_vocab s | stock cum table s | "
          "numpy cum table s | compaction (70 % removed) s")
    for size in sizes:
        row = measure(size, arguments.words, new_share=0.05, repeats=arguments.repeats, settings=settings)
        compaction_s = measure_compaction(size, settings)
        print(f"{size} | {row['words']:.0f} | {row['update_s']:.3f} | {row['vocabulary_s']:.3f} | "
              f"{row['gensim_train_s']:.3f} | {row['ratio']:.3f} | {row['bare_train_s']:.3f} | "
              f"{row['ratio_separate']:.2f} | {row['words_per_s']:.0f} | "
              f"{row['stock_vocab_s']:.3f} | {row['stock_cum_table_s']:.3f} | {row['numpy_cum_table_s']:.4f} | "
              f"{compaction_s:.3f}", flush=True)




# -- quality of settings -----------------------------------------------------

def bursty_windows(windows: int, seed: int, noise_senders: int = 3000) -> tuple[list[ClosedWindow], dict[str, str]]:
    """Hourly windows where 30 groups scan overlapping services in bursts.

    A group hits 1-3 of 20 services in a random 60-100 % of the hours, in
    bursts of consecutive hits by its members. Bursts of different groups
    and one-off noise senders interleave. Neighbouring tokens are shuffled
    locally, so bursts overlap at their edges.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(10, 80, 30)
    members = [[f"10.{g}.{i // 250}.{i % 250}" for i in range(int(n))] for g, n in enumerate(sizes)]
    truth = {sender: f"group{g}" for g, group in enumerate(members) for sender in group}
    services = [rng.choice(20, rng.integers(1, 4), replace=False) for _ in members]
    activity = rng.uniform(0.6, 1.0, len(members))
    noise = [f"192.168.{i // 250}.{i % 250}" for i in range(noise_senders)]
    result = []
    for index in range(windows):
        bursts: dict[int, list[list[str]]] = {service: [] for service in range(20)}
        for g, group in enumerate(members):
            if rng.random() > activity[g]:
                continue
            for service in services[g].tolist():
                for _ in range(rng.integers(2, 6)):
                    picks = rng.integers(0, len(group), rng.integers(20, 60))
                    bursts[service].append([group[i] for i in picks.tolist()])
        sentences = []
        for service, service_bursts in bursts.items():
            order = rng.permutation(len(service_bursts))
            tokens = [token for i in order.tolist() for token in service_bursts[i]]
            tokens += [noise[i] for i in rng.integers(0, len(noise), max(1, len(tokens) // 10)).tolist()]
            position = np.arange(len(tokens)) + rng.normal(0, 8, len(tokens))
            position[len(tokens) - max(1, len(tokens) // 10):] = rng.uniform(0, len(tokens), max(1, len(tokens) // 10))
            ordered = [tokens[i] for i in np.argsort(position, kind="stable").tolist()]
            deduplicated = [t for i, t in enumerate(ordered) if i == 0 or ordered[i - 1] != t]
            if deduplicated:
                sentences.append(Sentence(f"service{service}", tuple(deduplicated)))
        words = sum(len(s.senders) for s in sentences)
        result.append(ClosedWindow(index, index * HOUR_NS, (index + 1) * HOUR_NS, tuple(sentences), {}, words, 0, 0))
    return result, truth


def knn_accuracy(vectors: np.ndarray, labels: list[str], k: int = 5) -> float:
    """Leave-one-out k-NN majority accuracy by cosine similarity; ties count as wrong."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    correct = 0
    for row, found in enumerate(neighbours.tolist()):
        votes: dict[str, int] = {}
        for j in found:
            votes[labels[j]] = votes.get(labels[j], 0) + 1
        best = max(votes.values())
        correct += [label for label, count in votes.items() if count == best] == [labels[row]]
    return correct / len(labels)


def quality(windows: int, seeds: int) -> None:
    print("context | vector size | epochs per window | 5-NN accuracy (mean over seeds) | seconds per window")
    data = [bursty_windows(windows, seed) for seed in range(seeds)]
    print(f"# {windows} windows, {np.mean([w.words for w in data[0][0]]):.0f} words per window, "
          f"{len(data[0][1])} labelled senders, {seeds} seeds", flush=True)
    for context in (5, 25):
        for vector_size in (50, 100, 200):
            for epochs in (1, 3, 5):
                accuracies, seconds = [], []
                for run_windows, truth in data:
                    embedding = SenderEmbedding(vector_size=vector_size, context=context, epochs_per_window=epochs,
                                                seed=1)
                    started = time.perf_counter()
                    for window in run_windows:
                        embedding.update(window)
                    seconds.append((time.perf_counter() - started) / len(run_windows))
                    senders, vectors = embedding.vectors(list(truth))
                    accuracies.append(knn_accuracy(vectors, [truth[s] for s in senders]))
                print(f"{context} | {vector_size} | {epochs} | {np.mean(accuracies):.3f} | {np.mean(seconds):.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
