"""Why research scanners in the marx log do not find each other: windowing and training settings side by side.

Decodes the shared ``marx`` iptables log once and windows it with the
project's ``Windower`` under several settings. On each setting's sentences it
trains the streaming ``SenderEmbedding`` and the DarkVec batch recipe, then
scores the share of nearest neighbours of University of Michigan senders
(141.212.0.0/16) that are inside that network. Only numbers leave this module;
the capture is read in place and nothing derived from it is written.

    .venv/bin/python -m bench.bench_marx            # the main settings, a few minutes
    .venv/bin/python -m bench.bench_marx --full     # every setting, epochs and context sweeps
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.baselines import darkvec_batch, gensim_per_window
from bench.quality_pipeline import WindowSentences
from bench.quality_real import MARX_RELATIVE, UMICH_NETWORK, public_sources, umich_neighbour_share
from darkvec_stream.config import Settings, load_settings
from darkvec_stream.ingest import read_batches
from darkvec_stream.ingest.record import Record
from darkvec_stream.labels import KnnLabeller, LabelBook, leave_one_out
from darkvec_stream.stages import build_embedding, build_windower
from darkvec_stream.windows.model import ClosedWindow, Sentence

logger = logging.getLogger(__name__)

DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NEIGHBOURS = 5
# The project's label normaliser turns the lists' University of Michigan names into this label.
UMICH_LABEL = "u_mich"

# No sender expires during the six-month capture, so the final model holds every
# sender, as DarkVec counts packets over its whole observation period.
WHOLE_CAPTURE = ("embedding.expiry_s=16000000", "sender_filter.horizon_s=16000000")
# The 9 sensors' logs interleave with up to 23 minutes of lag.
LATENESS = ("windows.lateness_s=1800",)
DAILY = ("windows.window_s=86400",)
# Settings this benchmark found to work on a sparse multi-host log (docs/benchmarks/marx.md).
RECOMMENDED = (*WHOLE_CAPTURE, *LATENESS, *DAILY, "embedding.epochs_per_window=20")


@dataclass(frozen=True)
class Scores:
    """Scores of one set of sender vectors on the capture."""

    name: str
    senders: int
    umich_senders: int
    umich_share: float
    umich_all_inside: int
    chance_share: float
    labelled: int
    classes: int
    umich_f1: float
    macro_f1: float
    accuracy: float
    coverage: float
    train_s: float


def load_records(path: Path) -> list[Record]:
    """Decode the whole marx log, counting and dropping rejected lines."""
    records: list[Record] = []
    rejected = 0
    for batch, rejects in read_batches(path, "csv", preset="marx-iptables"):
        records.extend(batch)
        rejected += len(rejects)
    logger.info("marx: %s records decoded, %s rejected", len(records), rejected)
    return records


def close_windows(records: Sequence[Record], settings: Settings) -> tuple[list[ClosedWindow], int]:
    """Window the records with the project's windower; return the closed windows and the late count."""
    windower = build_windower(settings)
    late = Counter[str]()
    windower.on_late = lambda record, position: late.update(("late",))
    windows = windower.add_many(records, None)
    windows.extend(windower.flush())
    return windows, late["late"]


def keep_senders_offline(windows: Sequence[ClosedWindow], records: Sequence[Record],
                         min_packets: int) -> list[ClosedWindow]:
    """Keep senders with ``min_packets`` over the whole capture, as DarkVec's offline filter does.

    The windows must come from a windower that kept every sender. Removing
    tokens can make a sender adjacent to itself, so repeats collapse again.
    """
    totals = Counter(record.src for record in records)
    kept = {sender for sender, packets in totals.items() if packets >= min_packets}
    filtered: list[ClosedWindow] = []
    for window in windows:
        sentences = []
        for sentence in window.sentences:
            tokens = [sender for sender in sentence.senders if sender in kept]
            collapsed = tuple(s for i, s in enumerate(tokens) if i == 0 or tokens[i - 1] != s)
            if collapsed:
                sentences.append(Sentence(sentence.service, collapsed))
        activity = {s: a for s, a in window.activity.items() if s in kept}
        filtered.append(replace(window, sentences=tuple(sentences), activity=activity))
    return filtered


@dataclass(frozen=True)
class SentenceStats:
    """Placement of UMich senders in the sentences, which is all the embedding learns from."""

    words: int
    umich_words: int
    umich_sentences: int
    median_umich_sentence_words: float
    umich_words_with_umich_context: float


def sentence_stats(windows: Sequence[ClosedWindow], context: int) -> SentenceStats:
    """Count UMich tokens and the share of them with another UMich sender within ``context`` positions."""
    umich_words = with_partner = 0
    lengths: list[int] = []
    for window in windows:
        for sentence in window.sentences:
            inside = [ipaddress.ip_address(token) in UMICH_NETWORK for token in sentence.senders]
            positions = [i for i, flag in enumerate(inside) if flag]
            if not positions:
                continue
            lengths.append(len(sentence.senders))
            umich_words += len(positions)
            for position in positions:
                near = [p for p in positions if p != position and abs(p - position) <= context
                        and sentence.senders[p] != sentence.senders[position]]
                with_partner += bool(near)
    return SentenceStats(
        words=sum(window.words for window in windows), umich_words=umich_words, umich_sentences=len(lengths),
        median_umich_sentence_words=float(np.median(lengths)) if lengths else 0.0,
        umich_words_with_umich_context=with_partner / umich_words if umich_words else 0.0,
    )


def as_sentences(windows: Sequence[ClosedWindow]) -> list[WindowSentences]:
    return [WindowSentences(w.index, w.start_ns, w.end_ns, tuple(s.senders for s in w.sentences)) for w in windows]


def train_streaming(windows: Sequence[ClosedWindow], settings: Settings) -> tuple[list[str], np.ndarray, float]:
    """Run the project's ``SenderEmbedding`` over the windows; return senders, vectors, seconds."""
    embedding = build_embedding(settings)
    started = time.perf_counter()
    for window in windows:
        embedding.update(window)
    seconds = time.perf_counter() - started
    senders, vectors = embedding.vectors(sorted(embedding.keys()))
    return senders, vectors, seconds


def standard_scaled(vectors: np.ndarray) -> np.ndarray:
    """Scale every dimension to zero mean and unit variance, as the DarkVec code does before kNN."""
    deviation = vectors.std(axis=0)
    return (vectors - vectors.mean(axis=0)) / np.where(deviation > 0, deviation, 1.0)


def score(name: str, senders: list[str], vectors: np.ndarray, labels: dict[str, str], train_s: float) -> Scores:
    """Score unit vectors: UMich neighbour share and leave-one-out labels with the public lists."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit = unit.astype(np.float32)
    share, all_inside, umich = umich_neighbour_share(senders, unit, NEIGHBOURS)
    chance = (umich - 1) / max(len(senders) - 1, 1)
    present = {sender: labels[sender] for sender in senders if sender in labels}
    report = leave_one_out(senders, unit, present, KnnLabeller(k=7), include_unknown=False)
    table = report.without_unknown
    umich_f1 = next((c.f1 for c in table.classes if c.label == UMICH_LABEL), 0.0)
    result = Scores(
        name=name, senders=len(senders), umich_senders=umich, umich_share=share, umich_all_inside=all_inside,
        chance_share=chance, labelled=len(present), classes=len(table.classes), umich_f1=umich_f1,
        macro_f1=table.macro_f1,
        accuracy=report.without_unknown.accuracy, coverage=1.0 - report.without_unknown.abstain_rate,
        train_s=train_s,
    )
    print(format_row(result), flush=True)
    return result


def format_row(s: Scores) -> str:
    return (f"| {s.name} | {s.senders:,} | {s.umich_senders} | {s.umich_share:.3f} | {s.umich_all_inside} | "
            f"{s.chance_share:.4f} | {s.labelled} | {s.classes} | {s.umich_f1:.3f} | {s.macro_f1:.3f} | {s.accuracy:.3f} | {s.coverage:.2f} | "
            f"{s.train_s:.1f} |")


HEADER = ("| setting | senders | UMich | UMich share@5 | all 5 inside | chance share | labelled | classes | "
          "u_mich F1 | macro F1 | accuracy | coverage | train s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


@dataclass(frozen=True)
class Case:
    """One windowing setting and the recipes trained on its sentences."""

    name: str
    overrides: tuple[str, ...]
    recipes: tuple[str, ...] = ("streaming",)
    offline_filter: bool = False


def main_cases(full: bool) -> list[Case]:
    """Return the settings compared; each changes one thing against its neighbour in the list."""
    both = ("streaming", "batch")
    cases = [
        Case("1 h, lateness 300 (reported)", WHOLE_CAPTURE, both),
        Case("1 h", (*WHOLE_CAPTURE, *LATENESS), ("streaming", "batch", "bare")),
        Case("1 h, e20", (*WHOLE_CAPTURE, *LATENESS, "embedding.epochs_per_window=20")),
        Case("1 h, offline filter", (*WHOLE_CAPTURE, *LATENESS, "sender_filter.min_packets=1"), both,
             offline_filter=True),
        Case("1 day", (*WHOLE_CAPTURE, *LATENESS, *DAILY), both),
        Case("1 day, e20", RECOMMENDED, ("streaming", "batch", "scaled")),
        Case("1 day, e20, offline filter", (*RECOMMENDED, "sender_filter.min_packets=1"), both,
             offline_filter=True),
    ]
    if full:
        cases += [
            Case("1 day, e10", (*WHOLE_CAPTURE, *LATENESS, *DAILY, "embedding.epochs_per_window=10")),
            Case("6 h, e20", (*WHOLE_CAPTURE, *LATENESS, "windows.window_s=21600", "embedding.epochs_per_window=20")),
            Case("1 week, e20", (*RECOMMENDED, "windows.window_s=604800")),
            Case("1 day, e20, single", (*RECOMMENDED, "services.mode=single"), both),
            Case("1 day, e20, auto", (*RECOMMENDED, "services.mode=auto")),
            Case("1 day, e20, hybrid", (*RECOMMENDED, "services.mode=hybrid")),
            Case("1 day, e20, context 5", (*RECOMMENDED, "embedding.context=5")),
            Case("1 day, e20, min_count 3", (*RECOMMENDED, "embedding.min_count=3")),
            Case("1 day, e20, min_packets 5", (*RECOMMENDED, "sender_filter.min_packets=5")),
            Case("1 day, e20, min_packets 3", (*RECOMMENDED, "sender_filter.min_packets=3")),
        ]
    return cases


def run_case(case: Case, records: Sequence[Record], labels: dict[str, str]) -> list[Scores]:
    settings = load_settings(None, environ={}, overrides=list(case.overrides))
    started = time.perf_counter()
    windows, late = close_windows(records, settings)
    if case.offline_filter:
        windows = keep_senders_offline(windows, records, 10)
    logger.info("%s: %s windows, %s late records, windowing %.1f s",
                case.name, len(windows), late, time.perf_counter() - started)
    stats = sentence_stats(windows, settings.embedding.context)
    print(f"<!-- {case.name}: {len(windows)} windows, {late:,} late records, {stats.words:,} words, "
          f"{stats.umich_words} UMich words in {stats.umich_sentences} sentences (median length "
          f"{stats.median_umich_sentence_words:.0f}), {stats.umich_words_with_umich_context:.2f} of them with "
          f"another UMich sender within the context -->", flush=True)

    results = []
    streamed: list[tuple[list[str], np.ndarray, float]] = []

    def streaming() -> Scores:
        streamed.append(train_streaming(windows, settings))
        senders, vectors, seconds = streamed[-1]
        return score(f"{case.name} / streaming", senders, vectors, labels, seconds)

    def batch() -> Scores:
        trained = darkvec_batch(as_sentences(windows), vector_size=settings.embedding.vector_size,
                                context=settings.embedding.context)
        return score(f"{case.name} / batch e20", list(trained.senders), trained.vectors, labels, trained.seconds)

    def scaled() -> Scores:
        senders, vectors, seconds = streamed[-1]
        return score(f"{case.name} / streaming, standard-scaled", senders, standard_scaled(vectors), labels, seconds)

    def bare() -> Scores:
        trained = gensim_per_window(as_sentences(windows), vector_size=settings.embedding.vector_size,
                                    context=settings.embedding.context, epochs=settings.embedding.epochs_per_window)
        return score(f"{case.name} / bare gensim per window", list(trained.senders), trained.vectors, labels,
                     trained.seconds)

    recipes = {"streaming": streaming, "batch": batch, "scaled": scaled, "bare": bare}
    for recipe in case.recipes:
        results.append(recipes[recipe]())
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also sweep services, epochs, context and filters")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DARKVEC_SHARED_DATA") or DEFAULT_SHARED_DATA),
                        help="shared data directory holding real/ and labels/")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Per-epoch and per-window lines would bury the results.
    for noisy in ("gensim", "darkvec_stream.windows.windower", "darkvec_stream.labels.sources"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    records = load_records(options.data / MARX_RELATIVE)
    book = LabelBook(public_sources(options.data / "labels"))
    senders = {record.src for record in records}
    labels = {sender: match.label for sender in senders if (match := book.match(sender)) is not None}
    print(HEADER, flush=True)
    results: list[Scores] = []
    for case in main_cases(options.full):
        if options.only in case.name:
            results.extend(run_case(case, records, labels))
    if options.json:
        options.json.write_text(json.dumps([s.__dict__ for s in results], indent=1))


if __name__ == "__main__":
    main()
