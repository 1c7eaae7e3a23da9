"""``darkvec-stream export``: write sender labels or sender vectors to files.

``export labels`` writes ``ip,label,confidence,source`` for every sender with
a ground-truth label or a kNN label; ``export vectors`` writes the vectors as
CSV or Parquet. It reads saved state and changes none of it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, TypeVar

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.commands.evaluate import (
    add_knn_options,
    add_label_input,
    add_vector_input,
    book_from_args,
    labeller_from_args,
    load_vectors,
)
from darkvec_stream.errors import InputError
from darkvec_stream.index import SenderIndex
from darkvec_stream.labels.export import label_rows, write_labels_csv, write_vectors

logger = logging.getLogger(__name__)

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="write sender labels or vectors to CSV or Parquet")
    kinds = parser.add_subparsers(dest="export_kind", metavar="KIND", required=True)

    labels = kinds.add_parser(
        "labels",
        help="write ip,label,confidence,source for labelled senders",
        description="Ground-truth labels come with confidence 1 and their source name; other senders get a "
        "kNN label (source 'knn') unless --ground-truth-only is given. Abstentions are left out.",
    )
    add_vector_input(labels)
    add_label_input(labels)
    add_knn_options(labels)
    labels.add_argument("--ground-truth-only", action="store_true", help="write only senders with a ground-truth label")
    labels.add_argument("--out", type=Path, required=True, metavar="FILE", help="CSV file to write")
    labels.set_defaults(func=run_labels)

    vectors = kinds.add_parser("vectors", help="write sender vectors (ip and one value per dimension)")
    add_vector_input(vectors)
    vectors.add_argument(
        "--vector-format", choices=("auto", "csv", "parquet"), default="auto",
        help="file format; auto picks Parquet from 50,000 senders up and CSV below (default: auto)",
    )
    vectors.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write")
    vectors.set_defaults(func=run_vectors)


def run_labels(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    labeller = labeller_from_args(args, settings)
    book = book_from_args(args, settings)
    senders, vectors = load_vectors(args)
    decisions = []
    if not args.ground_truth_only:
        unlabelled = [row for row, sender in enumerate(senders) if book.label_of(sender) is None]
        search = SenderIndex(dimension=vectors.shape[1])
        search.upsert(senders, vectors)
        decisions = labeller.label([senders[row] for row in unlabelled], vectors[unlabelled], search, book)
    rows = label_rows(senders, book, decisions)
    count = _write(lambda: write_labels_csv(args.out, rows), args.out)
    knn_rows = sum(1 for row in rows if row.source == "knn")
    print(f"{args.out}: {count} labels ({count - knn_rows} ground truth, {knn_rows} kNN) for {len(senders)} senders")
    return 0


def run_vectors(args: argparse.Namespace) -> int:
    settings_from_args(args)
    senders, vectors = load_vectors(args)
    chosen = _write(lambda: write_vectors(args.out, senders, vectors, args.vector_format), args.out)
    print(f"{args.out}: {len(senders)} senders x {vectors.shape[1]} dimensions as {chosen}")
    return 0


def _write(action: Callable[[], T], path: Path) -> T:
    try:
        return action()
    except OSError as error:
        raise InputError(f"cannot write {path}: {error}") from error
