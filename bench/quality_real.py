"""Run a real capture through the pipeline and check that known research scanners find each other.

Reads the shared ``marx`` iptables log (never copied into the repository),
runs it through the real ``Pipeline`` in file mode, and reports two figures:
the share of each University of Michigan scanner's nearest neighbours inside
141.212.0.0/16, and leave-one-out scores with public scanner lists as ground
truth. Only numbers leave this module.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkvec_stream.config import load_settings
from darkvec_stream.ingest import read_batches
from darkvec_stream.labels import ExactNeighbourSearch, KnnLabeller, LabelBook, LabelSource, leave_one_out
from darkvec_stream.metrics import PipelineMetrics
from darkvec_stream.pipeline import Pipeline

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


# The capture spans six months. With the default 7-day expiry the final model
# holds only the last week's senders, so expiry and the sender filter's
# horizon are stretched over the whole capture, as DarkVec counts packets over
# its whole observation period.
WHOLE_CAPTURE_OVERRIDES = ("embedding.expiry_s=16000000", "sender_filter.horizon_s=16000000")


def run_real(data_root: Path, output_directory: Path, k: int = 5,
             overrides: tuple[str, ...] = WHOLE_CAPTURE_OVERRIDES) -> RealResult:
    """Run the marx capture through the pipeline and score the final vectors.

    Settings are the defaults plus ``overrides``; the capture has no TCP
    sequence numbers, so the Mirai source is off.
    """
    settings = load_settings(None, environ={}, overrides=[
        "metrics.enabled=false", "checkpoint.enabled=false", "labels.mirai=false", *overrides])
    output_directory.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.create(settings, output_directory, PipelineMetrics())
    started = time.perf_counter()
    records = windows = 0
    for batch, rejects in read_batches(data_root / MARX_RELATIVE, "csv", preset="marx-iptables"):
        records += len(batch)
        windows += len(pipeline.add(batch, rejects, None))
    windows += len(pipeline.flush())
    seconds = time.perf_counter() - started
    pipeline.close()

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
        records=records, windows=windows, seconds=seconds, senders=len(senders), umich_senders=umich,
        umich_neighbour_share=share, umich_all_inside=all_inside, labelled=len(labels), classes=classes,
        macro_f1=report.without_unknown.macro_f1, accuracy=report.without_unknown.accuracy,
        coverage=1.0 - report.without_unknown.abstain_rate,
        precision_decided=report.without_unknown_decided.accuracy,
        macro_f1_unknown=report.with_unknown.macro_f1,
    )


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
