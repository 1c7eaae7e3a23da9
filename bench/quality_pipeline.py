"""Run simulated traffic files through the real ``Pipeline`` and keep what the quality benchmark scores.

Decodes the files, feeds every block into ``Pipeline.add`` exactly as the
daemon's file mode does, and keeps per window the sentences, timings, alerts
and the full member list of each alerted cluster. It writes the pipeline's
normal outputs (``alerts.jsonl``) and no checkpoints; scoring is elsewhere.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from darkvec_stream.alerts.model import Alert
from darkvec_stream.config import Settings, load_settings
from darkvec_stream.ingest import read_batches
from darkvec_stream.metrics import PipelineMetrics
from darkvec_stream.pipeline import Pipeline, WindowResult

logger = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
# A size burst confirmed over two windows compares with the members three runs back.
JOINED_RUNS = 3


@dataclass(frozen=True)
class WindowSentences:
    """The sentences of one closed window, kept for the baselines after the window is gone."""

    index: int
    start_ns: int
    end_ns: int
    sentences: tuple[tuple[str, ...], ...]

    @property
    def words(self) -> int:
        return sum(len(sentence) for sentence in self.sentences)


@dataclass(frozen=True)
class AlertRecord:
    """One emitted alert with every member of its cluster at that window (not only the sample).

    ``subject`` contains the senders the alert is about, which scoring
    judges: the moved senders it names for a subgroup port-set change, the
    senders that joined in the last ``JOINED_RUNS`` runs for a size burst,
    and the whole cluster otherwise.
    """

    alert: Alert
    members: frozenset[str]
    subject: frozenset[str] = frozenset()


@dataclass
class PipelineRun:
    """What one run of the pipeline over a simulation produced."""

    pipeline: Pipeline
    settings: Settings
    windows: list[WindowSentences] = field(default_factory=list)
    process_s: list[float] = field(default_factory=list)
    embedding_s: list[float] = field(default_factory=list)
    gensim_train_s: list[float] = field(default_factory=list)
    words_trained: int = 0
    alerts: list[AlertRecord] = field(default_factory=list)
    total_s: float = 0.0
    records: int = 0
    recent_members: list[Mapping[str, frozenset[str]]] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        return self.windows[-1].end_ns if self.windows else 0

    def active_senders(self, horizon_s: float) -> list[str]:
        """Return the embedded senders seen within ``horizon_s`` of the last window's end, sorted."""
        embedding = self.pipeline.embedding
        cutoff_ns = self.end_ns - int(horizon_s * NS_PER_S)
        return sorted(s for s in embedding.keys() if (embedding.last_seen_ns(s) or 0) >= cutoff_ns)


def bench_settings(directory: Path, overrides: Sequence[str] = ()) -> Settings:
    """Return the project defaults with the simulation's operator labels and no side servers.

    Metrics and checkpoints are switched off: neither changes what the
    stages compute, and both would add file and socket work to the timings.
    """
    labels = (directory / "labels.csv").resolve()
    base = [
        "metrics.enabled=false",
        "checkpoint.enabled=false",
        f"labels.sources=[{{path: '{labels}', name: operator}}]",
    ]
    return load_settings(None, environ={}, overrides=[*base, *overrides])


def run_pipeline(sim_directory: Path, output_directory: Path, overrides: Sequence[str] = ()) -> PipelineRun:
    """Feed every ``traffic-*.csv`` file of a simulation through a fresh pipeline, then flush it."""
    settings = bench_settings(sim_directory, overrides)
    output_directory.mkdir(parents=True, exist_ok=True)
    for stale in ("alerts.jsonl", "deadletter.jsonl"):
        (output_directory / stale).unlink(missing_ok=True)
    pipeline = Pipeline.create(settings, output_directory, PipelineMetrics())
    run = PipelineRun(pipeline, settings)
    files = sorted(sim_directory.glob("traffic-*.csv"))
    started = time.perf_counter()
    for path in files:
        for records, rejects in read_batches(path, "record-csv"):
            run.records += len(records)
            _keep(run, pipeline.add(records, rejects, None))
    _keep(run, pipeline.flush())
    pipeline.flush_outputs()
    run.total_s = time.perf_counter() - started
    pipeline.close()
    logger.info("pipeline: %s windows, %s records in %.1f s", len(run.windows), run.records, run.total_s)
    return run


def _keep(run: PipelineRun, results: list[WindowResult]) -> None:
    for result in results:
        window = result.window
        run.windows.append(WindowSentences(
            window.index, window.start_ns, window.end_ns,
            tuple(sentence.senders for sentence in window.sentences),
        ))
        update = result.embedding
        run.process_s.append(result.seconds)
        run.embedding_s.append(update.vocabulary_s + update.training_s + update.compaction_s)
        run.gensim_train_s.append(update.gensim_train_s)
        run.words_trained += update.words_trained
        members = result.clusters.tracking.members if result.clusters is not None else {}
        for alert in result.alerts:
            cluster = frozenset(members.get(alert.cluster_id, frozenset()) if alert.cluster_id else frozenset())
            run.alerts.append(AlertRecord(alert, cluster, _subject(alert, cluster, run.recent_members)))
        if result.clusters is not None:
            run.recent_members = [*run.recent_members, members][-JOINED_RUNS:]


def _subject(alert: Alert, cluster: frozenset[str], recent: Sequence[Mapping[str, frozenset[str]]]) -> frozenset[str]:
    rule = alert.evidence.get("rule")
    if rule == "port_set_changed" and "subgroup" in alert.evidence:
        return frozenset(alert.sample_members)
    if rule == "size_burst" and recent and alert.cluster_id in recent[0]:
        return cluster - recent[0][alert.cluster_id]
    return cluster


def percentile_ms(values: Sequence[float], share: float) -> float:
    """Return a percentile of seconds values, in milliseconds."""
    return float(np.percentile(np.asarray(values), share * 100) * 1000) if values else 0.0
