"""Benchmark label sources, lookups, kNN labelling, vector export and abstain thresholds.

Measures: LabelBook load time for all shared scanner lists, lookups per
second (hits and misses), kNN labelling throughput (neighbour search with the
numpy exact search and the FAISS flat SenderIndex, then the vote), vector
export size and time in CSV against Parquet, and precision against coverage
of the abstain thresholds on synthetic embeddings with exact truth. Run with
``.venv/bin/python -m bench.bench_labels`` (10 k senders) or ``--full``
(adds 100 k senders). ``--label-data DIR`` points at the scanner lists.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from darkvec_stream.index import SenderIndex
from darkvec_stream.labels.book import LabelBook
from darkvec_stream.labels.evaluate import StaticLabels, replace_thresholds
from darkvec_stream.labels.export import write_vectors
from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.labels.neighbours import ExactNeighbourSearch
from darkvec_stream.labels.sources import LabelSource
from darkvec_stream.labels.synthetic import SyntheticEmbedding, make_embedding

# The scanner lists sit in shared/data beside the checkout unless DARKVEC_SHARED_DATA says otherwise.
DEFAULT_LABEL_DATA = Path(os.environ.get("DARKVEC_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data") / "labels"


def timed(action: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def all_sources(data: Path) -> list[LabelSource]:
    return [
        LabelSource("darkvec-gt", data / "darkvec-gt/big_gt.csv", priority=10),
        LabelSource("darkvec-demo", data / "darkvec-demo-gt/ground_truth.csv.gz", priority=10),
        LabelSource("openfilters", data / "openfilters-internet-scanners/cidr"),
        LabelSource("misp", data / "misp-warninglists-scanning"),
        LabelSource("xorlent", data / "xorlent-internet-scanners"),
        LabelSource("maltrail", data / "maltrail-mass-scanner", label="mass_scanner", label_from_comment=True, priority=-1),
        LabelSource("nict", data / "nict-survey-scanner/surveyscanner"),
        LabelSource("nict-orgs", data / "nict-survey-scanner/scanorg"),
        LabelSource("scannergrouper", data / "scannergrouper-labels"),
    ]


def bench_book(data: Path, lookups: int) -> None:
    print("## LabelBook on all shared scanner lists")
    seconds, book = timed(lambda: LabelBook(all_sources(data)))
    assert isinstance(book, LabelBook)
    print(f"load: {seconds:.2f} s for {len(book):,} networks; conflicts exact {book.stats.exact_conflicts:,}, "
          f"overlap {book.stats.overlap_conflicts:,}")
    rng = random.Random(1)
    misses = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(lookups)]
    hits = [sender for sender in (f"141.212.121.{i % 256}" for i in range(lookups))]
    tokens = [f"src_ipaddr{i}" for i in range(lookups)]
    for name, senders in (("random IPv4 (mostly misses)", misses), ("listed IPv4 (hits)", hits), ("opaque tokens", tokens)):
        seconds, _ = timed(lambda: [book.label_of(sender) for sender in senders])
        print(f"lookups, {name}: {lookups / seconds:,.0f} per s ({seconds / lookups * 1e6:.1f} us each)")
    print()


def labelling_data(senders: int) -> SyntheticEmbedding:
    # One labelled sender in ten, as on a telescope where lists cover a few scanners.
    classes = 20
    return make_embedding(
        classes=classes, largest_class=senders // 20, smallest_class=max(senders // 400, 5),
        labelled_share=0.5, unknown_groups=20, unknown_group_size=senders // 100,
        noise_senders=senders // 4, spread=0.18, overlap=0.4, seed=11,
    )


def bench_labelling(sizes: list[int]) -> None:
    print("## kNN labelling of every unlabelled sender (k=7, majority, 50 dimensions)")
    print("| senders | queries | exact numpy search s | faiss flat search s | vote s | labels/s (faiss + vote) |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        data = labelling_data(size)
        book = StaticLabels(data.ground_truth)
        rows = [row for row, sender in enumerate(data.senders) if sender not in data.ground_truth]
        queries = [data.senders[row] for row in rows]
        matrix = data.vectors[rows]
        labeller = KnnLabeller()
        exact = ExactNeighbourSearch(data.senders, data.vectors)
        exact_s, _ = timed(lambda: exact.search(matrix, labeller.search_k))
        index = SenderIndex(dimension=data.vectors.shape[1], kind="flat", threads=2)
        index.upsert(data.senders, data.vectors)
        faiss_s, found = timed(lambda: index.search(matrix, labeller.search_k))
        assert isinstance(found, list)
        vote_s, _ = timed(lambda: [labeller.decide(s, n, book) for s, n in zip(queries, found)])
        print(f"| {len(data.senders):,} | {len(queries):,} | {exact_s:.2f} | {faiss_s:.2f} | {vote_s:.2f} | "
              f"{len(queries) / (faiss_s + vote_s):,.0f} |")
    print()


def bench_export(sizes: list[int]) -> None:
    print("## Vector export, 50 dimensions")
    print("| senders | CSV MB | CSV write s | Parquet MB | Parquet write s | size ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            rng = np.random.default_rng(2)
            vectors = rng.standard_normal((size, 50)).astype(np.float32)
            senders = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(size)]
            csv_path, parquet_path = Path(folder) / "v.csv", Path(folder) / "v.parquet"
            csv_s, _ = timed(lambda: write_vectors(csv_path, senders, vectors, "csv"))
            parquet_s, _ = timed(lambda: write_vectors(parquet_path, senders, vectors, "parquet"))
            csv_mb, parquet_mb = csv_path.stat().st_size / 1e6, parquet_path.stat().st_size / 1e6
            print(f"| {size:,} | {csv_mb:.1f} | {csv_s:.2f} | {parquet_mb:.1f} | {parquet_s:.2f} | {csv_mb / parquet_mb:.1f} |")
    print()


def calibration_data(seed: int) -> SyntheticEmbedding:
    return make_embedding(
        classes=9, largest_class=400, smallest_class=20, labelled_share=0.5, unknown_groups=10,
        unknown_group_size=60, noise_senders=2000, spread=0.2, overlap=0.5, seed=seed,
    )


def bench_thresholds(seeds: list[int]) -> None:
    """Label the unlabelled senders and score them against the hidden truth."""
    print("## Abstain thresholds: unlabelled senders scored against the hidden truth")
    print("precision = correct labels / labels given; coverage = labelled-class senders that got a label; "
          "false labels = unlabelled-group and noise senders that got a label")
    similarities = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
    margins = (0.0, 0.15, 0.3, 0.45)
    for weighting in ("uniform", "similarity"):
        print(f"\n### weighting={weighting}, k=7, mean over seeds {seeds}")
        print("| min_similarity | min_margin | precision | coverage | false labels |")
        print("|---|---|---|---|---|")
        totals: dict[tuple[float, float], np.ndarray] = {}
        for seed in seeds:
            data = calibration_data(seed)
            base = KnnLabeller(weighting=weighting)
            truth = dict(zip(data.senders, data.true_class))
            rows = [row for row, sender in enumerate(data.senders) if sender not in data.ground_truth]
            queries = [data.senders[row] for row in rows]
            found = ExactNeighbourSearch(data.senders, data.vectors).search(data.vectors[rows], base.search_k)
            book = StaticLabels(data.ground_truth)
            for min_similarity in similarities:
                for min_margin in margins:
                    labeller = replace_thresholds(base, min_similarity, min_margin)
                    result = _score_unlabelled(labeller, queries, found, book, truth)
                    totals[(min_similarity, min_margin)] = totals.get((min_similarity, min_margin), 0) + result
        for (min_similarity, min_margin), summed in totals.items():
            precision, coverage, false_rate = summed / len(seeds)
            print(f"| {min_similarity:.2f} | {min_margin:.2f} | {precision:.3f} | {coverage:.3f} | {false_rate:.3f} |")
    print()


def _score_unlabelled(labeller: KnnLabeller, queries: list[str], found: list, book: StaticLabels,
                      truth: dict[str, str | None]) -> np.ndarray:
    labels_given = correct = known = covered = foreign = foreign_labelled = 0
    for sender, neighbours in zip(queries, found):
        decision = labeller.decide(sender, neighbours, book)
        actual = truth[sender]
        in_labelled_class = actual is not None and actual.startswith("class")
        known += in_labelled_class
        foreign += not in_labelled_class
        if decision.label is None:
            continue
        labels_given += 1
        correct += decision.label == actual
        covered += in_labelled_class
        foreign_labelled += not in_labelled_class
    return np.array([correct / max(labels_given, 1), covered / max(known, 1), foreign_labelled / max(foreign, 1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also run 100,000 senders (several minutes)")
    parser.add_argument("--label-data", type=Path, default=DEFAULT_LABEL_DATA, help="folder of the scanner lists")
    parser.add_argument("--skip-thresholds", action="store_true", help="skip the threshold calibration")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.full else [10_000]
    if args.label_data.is_dir():
        bench_book(args.label_data, lookups=200_000)
    else:
        print(f"scanner lists not found at {args.label_data}; LabelBook benchmark skipped\n")
    bench_labelling(sizes)
    bench_export(sizes)
    if not args.skip_thresholds:
        bench_thresholds([1, 2, 3] if args.full else [1])


if __name__ == "__main__":
    main()
