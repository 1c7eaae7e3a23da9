"""Everything after the source: windows, embedding, index, labels, clusters, alerts.

``Pipeline`` takes decoded records and rejects, and runs each closed window
through the stages in order. Kafka and file input share it unchanged. It
also saves and restores the state of every stage for checkpoints. It does not
poll, commit offsets or handle signals; the daemon does.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from darkvec_stream.alerts import AlertDispatcher
from darkvec_stream.alerts.model import Alert
from darkvec_stream.clusters.monitor import ClusterMonitor, ClusterUpdate
from darkvec_stream.config import Settings
from darkvec_stream.embedding import EmbeddingUpdate, SenderEmbedding
from darkvec_stream.errors import StateError
from darkvec_stream.index import SenderIndex, apply_embedding_update, rebuild_from_embedding
from darkvec_stream.ingest.deadletter import DeadLetterSink
from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import encode_record
from darkvec_stream.labels import KnnLabeller, LabelBook, LabelDecision, MiraiSource
from darkvec_stream.logs import log_context
from darkvec_stream.metrics import PipelineMetrics
from darkvec_stream.query import ClusterJournal, SenderHistory
from darkvec_stream.stages import (
    build_dead_letter,
    build_dispatcher,
    build_embedding,
    build_index,
    build_label_book,
    build_labeller,
    build_mirai,
    build_monitor,
    build_windower,
    file_outputs,
)
from darkvec_stream.windows import Windower, write_sentences
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

Position = tuple[str, int, int]
STATE_FILE = "pipeline.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class SenderLabel:
    """The current label of one active sender and where it came from."""

    label: str | None
    confidence: float
    source: str


@dataclass
class WindowResult:
    """The outcome of processing one closed window."""

    window: ClosedWindow
    embedding: EmbeddingUpdate
    labels: dict[str, SenderLabel]
    clusters: ClusterUpdate | None
    alerts: tuple[Alert, ...]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def brief(self) -> "WindowResult":
        """Return a copy without the per-sender detail, for summaries kept in memory."""
        return WindowResult(self.window, self.embedding, {}, None, self.alerts, self.seconds, {
            "senders": len(self.window.activity),
            "labelled": dict(Counter(value.label for value in self.labels.values() if value.label)),
            "abstained": sum(1 for value in self.labels.values() if value.label is None),
            "clusters": None if self.clusters is None else self.clusters.clustering.n_clusters,
        })


class Pipeline:
    """Run closed windows through embedding, index, labels, clusters and alerts."""

    def __init__(
        self,
        settings: Settings,
        output_dir: Path,
        metrics: PipelineMetrics,
        *,
        windower: Windower,
        embedding: SenderEmbedding,
        index: SenderIndex,
        mirai: MiraiSource,
        book: LabelBook,
        labeller: KnnLabeller,
        monitor: ClusterMonitor,
        dispatcher: AlertDispatcher,
        dead_letter: DeadLetterSink,
        history: SenderHistory | None = None,
        journal: ClusterJournal | None = None,
        dump_sentences: Path | None = None,
    ) -> None:
        self.settings = settings
        self.output_dir = output_dir
        self.metrics = metrics
        self.windower = windower
        self.embedding = embedding
        self.index = index
        self.mirai = mirai
        self.book = book
        self.labeller = labeller
        self.monitor = monitor
        self.dispatcher = dispatcher
        self.dead_letter = dead_letter
        self.history = history or SenderHistory(
            settings.query.history_windows, settings.query.history_ports
        )
        self.journal = journal or ClusterJournal(
            settings.query.journal_transitions, settings.query.journal_alerts
        )
        self.dump_sentences = dump_sentences
        self.windows_closed = 0
        self.sender_labels: dict[str, SenderLabel] = {}
        self.last_clusters: ClusterUpdate | None = None
        self._sink_dropped: dict[str, int] = {}
        self._last_reload_s = time.monotonic()
        self.windower.on_late = self._on_late

    # -- construction ------------------------------------------------------

    @classmethod
    def create(
        cls, settings: Settings, output_dir: Path, metrics: PipelineMetrics, dump_sentences: Path | None = None
    ) -> "Pipeline":
        mirai = build_mirai(settings)
        return cls(
            settings, output_dir, metrics,
            windower=build_windower(settings),
            embedding=build_embedding(settings),
            index=build_index(settings),
            mirai=mirai,
            book=build_label_book(settings, mirai),
            labeller=build_labeller(settings),
            monitor=build_monitor(settings),
            dispatcher=build_dispatcher(settings, output_dir),
            dead_letter=build_dead_letter(settings, output_dir),
            dump_sentences=dump_sentences,
        )

    @classmethod
    def restore(
        cls, settings: Settings, directory: Path, output_dir: Path, metrics: PipelineMetrics,
        dump_sentences: Path | None = None,
    ) -> "Pipeline":
        """Rebuild a pipeline from a checkpoint directory written by ``save``."""
        state = _read_state(directory / STATE_FILE)
        # Output files may hold lines written after this checkpoint; cut them
        # back so the replayed windows write them again exactly once.
        _truncate_outputs(state["output_sizes"], output_dir)
        pipeline = cls.create(settings, output_dir, metrics, dump_sentences)
        pipeline.windower.load(directory / "windows")
        pipeline.embedding = SenderEmbedding.load(directory / "embedding")
        pipeline.index = SenderIndex.load(directory / "index")
        pipeline.mirai.load(directory / "mirai")
        pipeline.book.load(directory / "labels")
        pipeline.monitor.load(directory / "clusters")
        pipeline.dispatcher.load(directory / "alerts")
        if (directory / "history").exists():
            pipeline.history.load(directory / "history")
            pipeline.journal.load(directory / "journal")
        else:
            logger.warning("checkpoint %s has no sender history (older version): it starts empty", directory)
        pipeline.windows_closed = int(state["windows_closed"])
        pipeline.sender_labels = {
            sender: SenderLabel(label, float(confidence), source)
            for sender, label, confidence, source in state["sender_labels"]
        }
        if len(pipeline.index) != len(pipeline.embedding):
            logger.warning("index contains %s senders but the model %s: rebuilding the index",
                           len(pipeline.index), len(pipeline.embedding))
            rebuild_from_embedding(pipeline.index, pipeline.embedding)
        return pipeline

    # -- input -------------------------------------------------------------

    def add(self, records: Sequence[Record], rejects: Sequence[Rejected], position: Position | None) -> list[WindowResult]:
        """Window one decoded batch (one Kafka message or one block of a file)."""
        for rejected in rejects:
            self.dead_letter.put(rejected)
        closed = self.windower.add_many(records, position)
        if position is not None:
            self.windower.mark_consumed(position)
        return [self.process_window(window) for window in closed]

    def flush(self) -> list[WindowResult]:
        """Close every open window (end of a finite input)."""
        return [self.process_window(window) for window in self.windower.flush()]

    def screen(
        self, records: Sequence[Record], position: Position | None
    ) -> tuple[Sequence[Record], list[Rejected]]:
        """Split off records dated after the wall clock plus ``windows.max_future_s``.

        One such record would move the watermark and make every later record
        late, so it is rejected as ``bad_timestamp`` before windowing.
        """
        limit_ns = time.time_ns() + self.settings.windows.max_future_s * 1_000_000_000
        if not records or max(record.ts_ns for record in records) <= limit_ns:
            return records, []
        kept, rejected = [], []
        for record in records:
            if record.ts_ns <= limit_ns:
                kept.append(record)
            else:
                rejected.append(Rejected(
                    "bad_timestamp",
                    f"event time {record.ts_ns} ns is more than windows.max_future_s after the wall clock",
                    encode_record(record), _origin(position),
                ))
        return kept, rejected

    def _on_late(self, record: Record, position: Position | None) -> None:
        self.metrics.records_late.inc()
        watermark = self.windower.watermark_ns
        self.dead_letter.put(Rejected("late", f"event time {record.ts_ns} ns is below the watermark {watermark} ns",
                                      encode_record(record), _origin(position)))

    # -- one window --------------------------------------------------------

    def process_window(self, window: ClosedWindow) -> WindowResult:
        """Run one closed window through every stage after windowing."""
        started = time.perf_counter()
        with log_context(window=window.index, generation=self.embedding.generation):
            # 1. Ground truth first: the Mirai fingerprint seen in this window,
            #    and list files changed on disk.
            self.mirai.observe(window)
            self._reload_labels_if_due()

            # 2. Embedding, then the index for exactly the senders that changed.
            update = self.embedding.update(window)
            apply_embedding_update(self.index, self.embedding, update)
            for sender in update.removed:
                self.sender_labels.pop(sender, None)
            self.monitor.forget_senders(list(update.removed))
            self.history.forget(update.removed)
            self.journal.forget(update.removed)
            self.history.observe(window)

            # 3. Label the window's senders.
            labels = self._label(window)

            # 4. Cluster, track and build alerts on schedule, then dispatch.
            clusters = self._cluster(window, labels)
            alerts = clusters.alerts if clusters is not None else ()
            report = self.dispatcher.dispatch(alerts)
            self.journal.record(clusters, report.emitted)

            if self.dump_sentences is not None:
                write_sentences(window, self.dump_sentences)
        seconds = time.perf_counter() - started
        self.windows_closed += 1
        result = WindowResult(window, update, labels, clusters, tuple(report.emitted), seconds)
        self._publish(result, report)
        return result

    def _reload_labels_if_due(self) -> None:
        if time.monotonic() - self._last_reload_s < self.settings.labels.reload_s:
            return
        self._last_reload_s = time.monotonic()
        changed = self.book.reload_if_changed()
        if changed:
            logger.info("label sources reloaded: %s", ", ".join(changed))

    def _label(self, window: ClosedWindow) -> dict[str, SenderLabel]:
        senders, vectors = self.embedding.vectors(sorted(window.activity))
        labels: dict[str, SenderLabel] = {}
        unknown: list[int] = []
        for row, sender in enumerate(senders):
            match = self.book.match(sender)
            if match is not None:
                labels[sender] = SenderLabel(match.label, 1.0, match.source)
            else:
                unknown.append(row)
        if unknown and len(self.index) > 1:
            decisions = self.labeller.label(
                [senders[row] for row in unknown], vectors[unknown], self.index, self.book
            )
            for decision in decisions:
                labels[decision.sender] = SenderLabel(decision.label, decision.confidence, "knn")
                if decision.abstained:
                    self.metrics.label_abstains.labels(reason=decision.reason).inc()
        self.sender_labels.update(labels)
        return labels

    def _cluster(self, window: ClosedWindow, labels: dict[str, SenderLabel]) -> ClusterUpdate | None:
        if self.windows_closed % self.settings.clusters.every_windows != 0:
            return None
        senders, vectors = self._active_vectors(window)
        if len(senders) < 2:
            return None
        known: dict[str, object] = {}
        for sender in senders:
            value = self.sender_labels.get(sender)
            if value is not None and value.label is not None:
                known[sender] = _Decision(value.label, value.confidence)
        self.last_clusters = self.monitor.update(window, senders, vectors, known)
        return self.last_clusters

    def _active_vectors(self, window: ClosedWindow) -> tuple[list[str], np.ndarray]:
        # Clusters cover the senders seen within clusters.active_s of the
        # window's end, not only this window, so that tracking compares
        # populations of similar size from one run to the next.
        horizon_ns = self.settings.clusters.active_s * 1_000_000_000
        cutoff_ns = window.end_ns - horizon_ns
        active = [
            sender for sender in self.embedding.keys()
            if (self.embedding.last_seen_ns(sender) or 0) >= cutoff_ns
        ]
        senders, vectors = self.embedding.vectors(sorted(active))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True) if len(senders) else None
        if norms is not None:
            vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return senders, vectors

    def _publish(self, result: WindowResult, report: Any) -> None:
        metrics = self.metrics
        update = result.embedding
        metrics.windows_closed.inc()
        metrics.window_close_seconds.observe(result.seconds)
        metrics.words_trained.inc(update.words_trained)
        if update.training_s > 0:
            metrics.words_per_second.set(update.words_trained / update.training_s)
        metrics.vocabulary_senders.set(len(self.embedding))
        metrics.index_vectors.set(len(self.index))
        metrics.senders_expired.inc(len(update.removed))
        metrics.set_label_counts(Counter(v.label for v in self.sender_labels.values() if v.label))
        metrics.window_close_timestamp.set(time.time())
        if self.windower.watermark_ns is not None:
            metrics.watermark.set(self.windower.watermark_ns / 1e9)
        if result.clusters is not None:
            churn = result.clusters.churn
            metrics.clusters_active.set(churn.active)
            for transition in ("births", "deaths", "splits", "merges", "survivals", "reemergences"):
                metrics.cluster_transitions.labels(transition=transition).inc(getattr(churn, transition))
        for alert in report.emitted:
            metrics.alerts.labels(type=alert.type.value).inc()
        for _, reason in report.suppressed:
            metrics.alerts_suppressed.labels(reason=reason).inc()
        self.publish_sink_state()

    def publish_sink_state(self) -> None:
        """Export how much each output holds back or has dropped (alert sinks and dead letters)."""
        states = [(sink.name, sink.stats.buffered, sum(sink.stats.dropped.values())) for sink in self.dispatcher.sinks]
        states.append(("deadletter", self.dead_letter.buffered, self.dead_letter.dropped))
        for name, buffered, dropped in states:
            self.metrics.sink_buffered.labels(sink=name).set(buffered)
            increase = dropped - self._sink_dropped.get(name, 0)
            if increase > 0:
                self.metrics.sink_dropped.labels(sink=name).inc(increase)
            self._sink_dropped[name] = dropped

    def poll_outputs(self) -> None:
        """Let sinks retry what they buffered while their destination was down."""
        self.dispatcher.poll()
        self.publish_sink_state()

    # -- state -------------------------------------------------------------

    def flush_outputs(self) -> None:
        """Make every line written so far durable (alerts and dead letters)."""
        self.dispatcher.flush()
        self.dead_letter.flush()

    def save(self, directory: Path) -> None:
        """Write every stage's state into ``directory`` (a checkpoint being built)."""
        (directory / "windows").mkdir(parents=True, exist_ok=True)
        self.windower.save(directory / "windows")
        self.embedding.save(directory / "embedding")
        self.index.save(directory / "index")
        self.mirai.save(directory / "mirai")
        self.book.save(directory / "labels")
        self.monitor.save(directory / "clusters")
        self.dispatcher.save(directory / "alerts")
        self.history.save(directory / "history")
        self.journal.save(directory / "journal")
        state = {
            "version": STATE_VERSION,
            "windows_closed": self.windows_closed,
            "output_sizes": _output_sizes(file_outputs(self.settings, self.output_dir), self.output_dir),
            "sender_labels": [
                [sender, value.label, value.confidence, value.source]
                for sender, value in sorted(self.sender_labels.items())
            ],
        }
        (directory / STATE_FILE).write_text(json.dumps(state))

    def close(self) -> None:
        self.dispatcher.close()
        self.dead_letter.close()


@dataclass(frozen=True)
class _Decision:
    label: str
    confidence: float


def _origin(position: Position | None) -> Origin:
    # File input does not track line numbers past decoding, so the raw field
    # contains the record re-encoded as record-csv.
    return Origin(position[0], position[1], position[2]) if position else Origin("file")


def _output_sizes(paths: Sequence[Path], output_dir: Path) -> dict[str, int]:
    # Keys are relative to the output directory (absolute only for files
    # outside it), so a restart from another working directory cuts the
    # same files and never a file of the same relative name elsewhere.
    sizes = {}
    for path in paths:
        try:
            name = str(path.relative_to(output_dir))
        except ValueError:
            name = str(path.resolve())
        sizes[name] = path.stat().st_size if path.exists() else 0
    return sizes


def _truncate_outputs(sizes: dict[str, int], output_dir: Path) -> None:
    for name, size in sizes.items():
        path = Path(name) if Path(name).is_absolute() else output_dir / name
        if path.exists() and path.stat().st_size > size:
            logger.info("cutting %s back to %s bytes written before the checkpoint", path, size)
            with path.open("r+b") as handle:
                handle.truncate(size)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StateError(f"pipeline state {path} is missing or unreadable: {error}") from None
    if state.get("version") != STATE_VERSION:
        raise StateError(f"pipeline state {path} has version {state.get('version')!r}, expected {STATE_VERSION}")
    return state


__all__ = ["LabelDecision", "Pipeline", "SenderLabel", "WindowResult"]
