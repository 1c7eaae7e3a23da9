"""Run a real capture through the pipeline and check that known research scanners find each other.

Reads the shared ``marx`` iptables log (never copied into the repository)
and runs it through the real ``Pipeline`` in file mode. It reports the share
of each University of Michigan scanner's nearest neighbours inside
141.212.0.0/16, and leave-one-out scores with public scanner lists as ground
truth. It also times the run against bare gensim on the same sentences. Only
numbers leave this module; ``bench/bench_marx.py`` compares settings.

    .venv/bin/python -m bench.quality_real            # defaults and the recommended settings
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.baselines import gensim_per_window
from bench.quality_pipeline import WindowSentences
from darkvec_stream.config import load_settings
from darkvec_stream.ingest import read_batches
from darkvec_stream.labels import ExactNeighbourSearch, KnnLabeller, LabelBook, LabelSource, leave_one_out
from darkvec_stream.metrics import PipelineMetrics
from darkvec_stream.pipeline import Pipeline, WindowResult

logger = logging.getLogger(__name__)

UMICH_NETWORK = ipaddress.IPv4Network("141.212.0.0/16")
MARX_RELATIVE = Path("real/marx-iptables-2013/marx.csv.gz")


def public_sources(labels_root: Path) -> list[LabelSource]:
    """Return the shared public scanner lists as label sources (curated lists first)."""
    return [
        LabelSource("darkvec-gt", labels_root / "darkvec-gt/big_gt.csv", priority=10),
        LabelSource("openfilters", labels_root / "openfilters-internet-scanners/cidr"),
        LabelSource("misp", labels_root / "misp-warninglists-scanning"),
        LabelSource("xorlent", labels_root / "xorlent-internet-scanners"),
        LabelSource("maltrail", labels_root / "maltrail-mass-scanner", label="mass_scanner",
                    label_from_comment=True, priority=-1),
        LabelSource("nict", labels_root / "nict-survey-scanner/surveyscanner"),
    ]


@dataclass(frozen=True)
class RealResult:
    """Figures of one pipeline run over the real capture."""

    records: int
    windows: int
    seconds: float
    senders: int
    umich_senders: int
    umich_neighbour_share: float
    umich_all_inside: int
    labelled: int
    classes: dict[str, int]
    macro_f1: float
    accuracy: float
    coverage: float
    precision_decided: float
    macro_f1_unknown: float
    late_records: int = 0
    embedding_s: float = 0.0
    bare_gensim_s: float = 0.0
    clustering_runs: int = 0

    @property
    def ratio_to_bare_gensim(self) -> float:
        """End-to-end seconds over bare gensim per window on the same sentences and settings."""
        return self.seconds / self.bare_gensim_s if self.bare_gensim_s else 0.0


# The capture spans six months. With the default 7-day expiry the final model
# holds only the last week's senders, so expiry and the sender filter's
# horizon are stretched over the whole capture, as DarkVec counts packets over
# its whole observation period.
WHOLE_CAPTURE_OVERRIDES = ("embedding.expiry_s=16000000", "sender_filter.horizon_s=16000000")

# Settings bench/bench_marx.py found for this sparse 9-host log (docs/benchmarks/marx.md):
# a lateness above the sensors' 23-minute lag, daily windows so a sweep's
# senders share sentences, and 20 passes per window like DarkVec's 20 epochs.
RECOMMENDED_OVERRIDES = (*WHOLE_CAPTURE_OVERRIDES, "windows.lateness_s=1800", "windows.window_s=86400",
                         "embedding.epochs_per_window=20")


def run_real(data_root: Path, output_directory: Path, k: int = 5,
             overrides: tuple[str, ...] = WHOLE_CAPTURE_OVERRIDES, bare_gensim: bool = False) -> RealResult:
    """Run the marx capture through the pipeline and score the final vectors.

    Settings are the defaults plus ``overrides``; the capture has no TCP
    sequence numbers, so the Mirai source is off. With ``bare_gensim`` the
    closed windows' sentences are kept and a stock gensim model is trained on
    them per window with the same settings, as the cost reference.
    """
    settings = load_settings(None, environ={}, overrides=[
        "metrics.enabled=false", "checkpoint.enabled=false", "labels.mirai=false", *overrides])
    output_directory.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.create(settings, output_directory, PipelineMetrics())
    started = time.perf_counter()
    records = 0
    results = []
    for batch, rejects in read_batches(data_root / MARX_RELATIVE, "csv", preset="marx-iptables"):
        records += len(batch)
        results.extend(_brief(pipeline.add(batch, rejects, None), bare_gensim))
    results.extend(_brief(pipeline.flush(), bare_gensim))
    seconds = time.perf_counter() - started
    late_records = pipeline.windower.late_records
    pipeline.close()
    bare_gensim_s = 0.0
    if bare_gensim:
        e = settings.embedding
        bare = gensim_per_window(
            [WindowSentences(r.window.index, r.window.start_ns, r.window.end_ns,
                             tuple(sentence.senders for sentence in r.window.sentences)) for r in results],
            vector_size=e.vector_size, context=e.context, epochs=e.epochs_per_window,
            alpha_start=e.alpha_start, alpha_end=e.alpha_end, seed=e.seed, workers=e.workers)
        bare_gensim_s = bare.seconds
    embedding_s = sum(r.embedding.vocabulary_s + r.embedding.training_s + r.embedding.compaction_s for r in results)
    clustering_runs = sum(1 for r in results if r.extra.get("clusters") is not None)

    senders, vectors = pipeline.embedding.vectors(sorted(pipeline.embedding.keys()))
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    share, all_inside, umich = umich_neighbour_share(senders, vectors, k)

    book = LabelBook(public_sources(data_root / "labels"))
    labels = {sender: match.label for sender in senders if (match := book.match(sender)) is not None}
    report = leave_one_out(senders, vectors, labels, KnnLabeller(k=7), include_unknown=True, max_unknown=5000)
    assert report.with_unknown is not None
    classes: dict[str, int] = {}
    for label in labels.values():
        classes[label] = classes.get(label, 0) + 1
    return RealResult(
        records=records, windows=len(results), seconds=seconds, senders=len(senders), umich_senders=umich,
        umich_neighbour_share=share, umich_all_inside=all_inside, labelled=len(labels), classes=classes,
        macro_f1=report.without_unknown.macro_f1, accuracy=report.without_unknown.accuracy,
        coverage=1.0 - report.without_unknown.abstain_rate,
        precision_decided=report.without_unknown_decided.accuracy,
        macro_f1_unknown=report.with_unknown.macro_f1,
        late_records=late_records, embedding_s=embedding_s, bare_gensim_s=bare_gensim_s,
        clustering_runs=clustering_runs,
    )


def _brief(results: list[WindowResult], keep_sentences: bool) -> list[WindowResult]:
    """Drop per-sender detail of processed windows, and their sentences unless the cost reference needs them."""
    kept = [result.brief() for result in results]
    if keep_sentences:
        return kept
    return [replace(r, window=replace(r.window, sentences=(), activity={})) for r in kept]


def umich_neighbour_share(senders: list[str], vectors: np.ndarray, k: int) -> tuple[float, int, int]:
    """Return the mean share of k nearest neighbours inside 141.212.0.0/16 over the senders in it.

    Also returns how many of those senders have all k neighbours inside,
    and how many senders are inside.
    """
    inside = np.array([ipaddress.ip_address(s) in UMICH_NETWORK for s in senders])
    rows = np.flatnonzero(inside)
    if rows.size == 0:
        return 0.0, 0, 0
    search = ExactNeighbourSearch(senders, vectors)
    found = search.search(vectors[rows], k + 1)
    row_of = {sender: row for row, sender in enumerate(senders)}
    shares = []
    for row, neighbours in zip(rows.tolist(), found):
        others = [row_of[sender] for sender, _ in neighbours if row_of[sender] != row][:k]
        shares.append(float(inside[others].mean()) if others else 0.0)
    return float(np.mean(shares)), sum(1 for share in shares if share == 1.0), int(rows.size)


def print_result(name: str, result: RealResult) -> None:
    """Print one run as a Markdown table row."""
    print(f"| {name} | {result.records:,} | {result.late_records:,} | {result.windows:,} | {result.clustering_runs} | "
          f"{result.senders:,} | {result.umich_senders} | {result.umich_neighbour_share:.3f} | {result.umich_all_inside} | "
          f"{result.macro_f1:.3f} | {result.coverage:.2f} | {result.seconds:.1f} | {result.embedding_s:.1f} | "
          f"{result.bare_gensim_s:.1f} | {result.ratio_to_bare_gensim:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the marx capture through the pipeline and score UMich neighbours.")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DARKVEC_SHARED_DATA")
                                                          or Path(__file__).resolve().parents[2] / "shared" / "data"),
                        help="shared data directory holding real/ and labels/")
    parser.add_argument("--work", type=Path, default=Path("/tmp/darkvec-marx"), help="directory for pipeline outputs")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra override for the recommended run (repeatable)")
    parser.add_argument("--skip-defaults", action="store_true", help="run only the recommended settings")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    print("| settings | records | late | windows | clustering runs | senders | UMich | UMich share@5 | all 5 inside | "
          "macro F1 | coverage | end to end s | embedding s | bare gensim s | end to end / bare |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    if not options.skip_defaults:
        print_result("defaults, whole capture", run_real(options.data, options.work / "defaults", bare_gensim=True))
    overrides = (*RECOMMENDED_OVERRIDES, *options.set)
    name = "recommended" + "".join(f", {o}" for o in options.set)
    print_result(name, run_real(options.data, options.work / "recommended", overrides=overrides, bare_gensim=True))


if __name__ == "__main__":
    main()
