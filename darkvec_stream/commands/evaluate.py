"""``darkvec-stream evaluate``: leave-one-out scores of kNN labelling on saved vectors.

Reads sender vectors (an exported vectors file or a saved embedding state)
and label sources, runs the evaluation of ``darkvec_stream.labels.evaluate``
and prints the table. It trains nothing and changes no state.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.config import Settings
from darkvec_stream.errors import InputError, StateError
from darkvec_stream.labels.book import LabelBook
from darkvec_stream.labels.evaluate import leave_one_out, threshold_sweep
from darkvec_stream.labels.export import read_vectors
from darkvec_stream.labels.knn import VOTES, WEIGHTINGS, KnnLabeller
from darkvec_stream.labels.sources import LabelSource

logger = logging.getLogger(__name__)

SWEEP_SIMILARITIES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_MARGINS = (0.0, 0.15, 0.3, 0.45, 0.6)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="leave-one-out scores of kNN labelling (the DarkVec table)",
        description="Classify each labelled sender from its neighbours with its own label hidden, and "
        "print per-class precision, recall, F1 and support, with and without an 'unknown' class.",
    )
    add_vector_input(parser)
    add_label_input(parser)
    add_knn_options(parser)
    parser.add_argument(
        "--no-unknown", action="store_true",
        help="skip the setting where unlabelled senders form the class 'unknown'",
    )
    parser.add_argument(
        "--max-unknown", type=int, default=20000, metavar="SENDERS",
        help="unlabelled senders sampled as queries in the 'unknown' setting (default: 20000; 0 for all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample (default: 0)")
    parser.add_argument(
        "--sweep", action="store_true",
        help="also print precision and coverage for a grid of min-similarity and min-margin values",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE",
        help="write the report as JSON to FILE and as text to FILE with suffix .txt",
    )
    parser.set_defaults(func=run)


def add_vector_input(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive --vectors / --state options."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--vectors", type=Path, metavar="FILE", help="vectors file written by 'export vectors' (CSV or Parquet)")
    group.add_argument("--state", type=Path, metavar="DIR", help="saved embedding state directory (SenderEmbedding.save)")


def add_label_input(parser: argparse.ArgumentParser) -> None:
    """Add the --labels option."""
    parser.add_argument(
        "--labels", type=Path, nargs="+", metavar="PATH",
        help="label source files or directories, format detected, equal priority, first listed wins "
        "ties (default: labels.sources from the configuration)",
    )


def add_knn_options(parser: argparse.ArgumentParser) -> None:
    """Add the kNN vote options; unset options take the configuration's knn section."""
    parser.add_argument("--k", type=int, metavar="NEIGHBOURS", help="labelled neighbours that vote (default: knn.k from the configuration, 7)")
    parser.add_argument("--vote", choices=VOTES, help="vote rule (default: knn.vote from the configuration, majority)")
    parser.add_argument("--weighting", choices=WEIGHTINGS, help="weight of each voter (default: knn.weighting from the configuration, uniform)")
    parser.add_argument(
        "--min-similarity", type=float, metavar="COSINE",
        help="abstain when the nearest voter's cosine similarity is below this (default: knn.min_similarity from the configuration, 0.5)",
    )
    parser.add_argument(
        "--min-margin", type=float, metavar="SHARE",
        help="abstain when the winner's vote share minus the runner-up's is below this, as a share of the votes from 0 to 1 "
        "(default: knn.min_margin from the configuration, 0.3)",
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    labeller = labeller_from_args(args, settings)
    book = book_from_args(args, settings)
    senders, vectors = load_vectors(args)
    labels = book.labelled(senders)
    logger.info("evaluating %d senders, %d labelled, with %s vote", len(senders), len(labels), labeller.vote)
    max_unknown = args.max_unknown if args.max_unknown and args.max_unknown > 0 else None
    report = leave_one_out(senders, vectors, labels, labeller, include_unknown=not args.no_unknown,
                           max_unknown=max_unknown, seed=args.seed)
    text = report.to_text()
    document = report.to_dict()
    if args.sweep:
        points = threshold_sweep(senders, vectors, labels, labeller, SWEEP_SIMILARITIES, SWEEP_MARGINS)
        text += _render_sweep(points)
        document["sweep"] = [point.__dict__ for point in points]
    print(text, end="")
    if args.out is not None:
        write_report(args.out, document, text)
    return 0


def labeller_from_args(args: argparse.Namespace, settings: Settings) -> KnnLabeller:
    """Build the labeller from the options, falling back to the configuration."""
    knn = settings.knn
    return KnnLabeller(
        k=args.k if args.k is not None else knn.k,
        vote=args.vote or knn.vote,
        min_similarity=args.min_similarity if args.min_similarity is not None else knn.min_similarity,
        min_margin=args.min_margin if args.min_margin is not None else knn.min_margin,
        weighting=args.weighting or getattr(knn, "weighting", "uniform"),
    )


def book_from_args(args: argparse.Namespace, settings: Settings) -> LabelBook:
    """Build the label book from --labels, or from labels.sources in the configuration."""
    if args.labels:
        return LabelBook.from_paths(args.labels)
    configured = [LabelSource.from_mapping(entry) for entry in settings.labels.sources]
    if not configured:
        raise InputError("no label sources: give --labels PATH or set labels.sources in the configuration")
    return LabelBook(configured)


def load_vectors(args: argparse.Namespace) -> tuple[list[str], np.ndarray]:
    """Read sender vectors from --vectors or --state."""
    if args.vectors is not None:
        senders, vectors = read_vectors(args.vectors)
    else:
        senders, vectors = _load_state(args.state)
    if not senders:
        raise InputError(f"no sender vectors in {args.vectors or args.state}")
    return senders, vectors


def _load_state(directory: Path) -> tuple[list[str], np.ndarray]:
    from darkvec_stream.embedding import SenderEmbedding

    from darkvec_stream.checkpoint.locate import stage_directory

    # A checkpoint keeps the embedding in a subdirectory of its own, and an
    # output or checkpoint directory resolves to its newest valid checkpoint.
    for candidate in (directory, stage_directory(directory, "embedding")):
        if (candidate / "embedding.json").exists():
            embedding = SenderEmbedding.load(candidate)
            return embedding.vectors(embedding.keys())
    raise StateError(f"no saved embedding in {directory} (embedding.json not found there or in {directory / 'embedding'})")


def write_report(path: Path, document: dict, text: str) -> None:
    """Write the report as JSON to ``path`` and as text next to it."""
    json_path = path if path.suffix != ".txt" else path.with_suffix(".json")
    text_path = path.with_suffix(".txt")
    try:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        text_path.write_text(text)
    except OSError as error:
        raise InputError(f"cannot write the report to {json_path}: {error}") from error
    logger.info("report written to %s and %s", json_path, text_path)


def _render_sweep(points: list) -> str:
    lines = ["Threshold sweep (labelled senders, leave-one-out)",
             "min_similarity  min_margin  coverage  precision  accuracy  macro_f1"]
    for point in points:
        lines.append(
            f"{point.min_similarity:14.2f}  {point.min_margin:10.2f}  {point.coverage:8.3f}  "
            f"{point.precision:9.3f}  {point.accuracy:8.3f}  {point.macro_f1:8.3f}"
        )
    return "\n".join(lines) + "\n"
