"""The single trainer: assemble windows from the sentences topic and run the pipeline on them.

It reads every partition of the sentences topic with one consumer, lets a
``WindowAssembler`` decide when each window is complete, merges the parts
and runs ``Pipeline.process_window`` (model, index, labels, clusters,
alerts). After each window it writes a checkpoint holding the pipeline,
the assembler's pending parts and the sentences-topic offsets, then
commits those offsets, as ``darkvec-stream run`` does. It never reads
records; window workers do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from darkvec_stream.checkpoint import CheckpointStore
from darkvec_stream.config import Settings
from darkvec_stream.errors import DarkvecError, StateError
from darkvec_stream.ingest.record import Origin, Rejected
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.metrics import Health, PipelineMetrics
from darkvec_stream.pipeline import Pipeline, WindowResult
from darkvec_stream.query.server import serve_query
from darkvec_stream.query.snapshot import SnapshotPublisher
from darkvec_stream.scaleout.assembly import ReadyWindow, WindowAssembler, merge_parts
from darkvec_stream.scaleout.lifecycle import StopRequest, metrics_server
from darkvec_stream.scaleout.messages import MessageError
from darkvec_stream.scaleout.metrics import TrainerMetrics
from darkvec_stream.scaleout.settings import ScaleoutSettings, check_service_mode
from darkvec_stream.stages import build_security

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]
ASSEMBLER_FILE = "scaleout/assembler.json"


@dataclass
class TrainerSummary:
    """Counts and window results of one trainer run."""

    messages_read: int = 0
    messages_rejected: int = 0
    windows: list[WindowResult] = field(default_factory=list)
    idle_partitions: int = 0
    checkpoints: int = 0
    restored_from: str | None = None


class Trainer:
    """Consume window parts, assemble whole windows and run the pipeline on each, with checkpoints."""

    def __init__(
        self,
        settings: Settings,
        scaleout: ScaleoutSettings,
        *,
        metrics: PipelineMetrics | None = None,
        dump_sentences: Path | None = None,
        consumer_factory: Callable[..., RecordConsumer] = RecordConsumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_service_mode(settings.services.mode)
        self.settings = settings
        self.scaleout = scaleout
        self.dump_sentences = dump_sentences
        self.output_dir = Path(settings.output.directory)
        self.metrics = metrics or PipelineMetrics()
        self.trainer_metrics = TrainerMetrics(self.metrics.registry)
        self.health = Health(stale_after_s=2.0 * settings.windows.window_s)
        self.summary = TrainerSummary()
        self._security = build_security(settings)
        self._consumer_factory = consumer_factory
        self._clock = clock
        self._store: CheckpointStore | None = None
        # The query API reads snapshots published after each window.
        self.snapshots = SnapshotPublisher()
        self._query_enabled = False

    # -- entry point -------------------------------------------------------

    def run(self, stop: StopRequest, *, exit_at_end: bool = False, metrics_port: int | None = None) -> TrainerSummary:
        """Run until ``stop`` is set, or with ``exit_at_end`` until every partition reported its end."""
        bootstrap = self.settings.kafka.bootstrap_servers
        if bootstrap == "embedded":
            raise DarkvecError("the trainer needs the broker the workers use: set kafka.bootstrap_servers")
        host = self.settings.metrics.host
        port = metrics_port
        if port is None and self.settings.metrics.enabled:
            port = self.settings.metrics.port
        with metrics_server(self.metrics.registry, self.health, host, port), \
                serve_query(self.settings, self.snapshots) as query_server:
            self._query_enabled = query_server is not None
            partitions = self._records_partitions(bootstrap)
            pipeline, assembler, offsets = self._open(partitions)
            self._publish(pipeline, None)
            consumer = self._consumer_factory(
                bootstrap, [self.scaleout.sentences_topic], self.scaleout.trainer_group_id,
                assignment="manual", security=self._security,
                max_poll_records=self.settings.kafka.max_poll_records,
                metadata_timeout_s=self.settings.kafka.metadata_timeout_s,
            )
            try:
                with consumer:
                    consumer.seek_to(offsets)
                    processed = dict(offsets)
                    self._consume(consumer, pipeline, assembler, processed, stop, exit_at_end)
                    self._checkpoint(pipeline, assembler, processed, consumer)
            except KafkaError as error:
                raise DarkvecError(f"Kafka at {bootstrap} failed: {error}; the last checkpoint is kept "
                                   "and a restart resumes from it") from error
            finally:
                pipeline.close()
        return self.summary

    def _publish(self, pipeline: Pipeline, changed: set[str] | None) -> None:
        """Hand the query API a copy of the state; ``changed=None`` copies every sender."""
        if self._query_enabled:
            self.snapshots.publish(pipeline.embedding, pipeline.history, pipeline.journal, pipeline.sender_labels,
                                   pipeline.windows_closed, changed)

    def _records_partitions(self, bootstrap: str) -> int:
        # A producer's metadata request may create the topics on brokers that
        # auto-create them; a consumer's would not.
        producer = KafkaProducer(bootstrap_servers=bootstrap, **self._security.client_options())
        try:
            records = producer.partitions_for(self.scaleout.records_topic)
            sentences = producer.partitions_for(self.scaleout.sentences_topic)
        finally:
            producer.close(timeout=5)
        if not records or not sentences:
            raise DarkvecError(f"topics {self.scaleout.records_topic!r} and {self.scaleout.sentences_topic!r} "
                               "must exist: create them or enable auto-creation on the broker")
        logger.info("assembling windows from %s partitions of %s", len(records), self.scaleout.records_topic)
        return len(records)

    # -- state -------------------------------------------------------------

    def _open(self, partitions: int) -> tuple[Pipeline, WindowAssembler, dict[PartitionKey, int]]:
        settings = self.settings
        self.output_dir.mkdir(parents=True, exist_ok=True)
        assembler = WindowAssembler(partitions, self.scaleout.idle_timeout_s, clock=self._clock)
        offsets: dict[PartitionKey, int] = {}
        pipeline: Pipeline | None = None
        if settings.checkpoint.enabled:
            self._store = CheckpointStore(self.output_dir / settings.checkpoint.directory, settings.checkpoint.keep)
            latest = self._store.latest_or_none()
            if latest is not None:
                pipeline = Pipeline.restore(settings, latest.path, self.output_dir, self.metrics, self.dump_sentences)
                path = latest.path / ASSEMBLER_FILE
                try:
                    assembler.load(path.read_bytes())
                except OSError as error:
                    raise StateError(f"checkpoint {latest.path} has no readable {ASSEMBLER_FILE}: {error}; "
                                     "it was not written by the trainer") from None
                offsets = {(topic, int(partition)): int(offset) for topic, partition, offset in latest.meta["offsets"]}
                self.summary.restored_from = str(latest.path)
                logger.info("restored checkpoint %s; resuming at offsets %s", latest.path.name, offsets or "none")
        if pipeline is None:
            pipeline = Pipeline.create(settings, self.output_dir, self.metrics, self.dump_sentences)
            self._checkpoint(pipeline, assembler, {}, None)
        self.health.ready = True
        return pipeline, assembler, offsets

    def _checkpoint(self, pipeline: Pipeline, assembler: WindowAssembler, positions: dict[PartitionKey, int],
                    consumer: RecordConsumer | None) -> None:
        # 1. Make alert and dead-letter lines durable before recording their sizes.
        pipeline.flush_outputs()
        if self._store is None:
            return

        # 2. Pipeline state and pending parts in one atomic checkpoint.
        def fill(directory: Path) -> None:
            pipeline.save(directory)
            (directory / ASSEMBLER_FILE).parent.mkdir(parents=True, exist_ok=True)
            (directory / ASSEMBLER_FILE).write_bytes(assembler.save())

        started = time.perf_counter()
        meta = {
            "offsets": [[topic, partition, offset] for (topic, partition), offset in sorted(positions.items())],
            "windows_closed": pipeline.windows_closed,
        }
        try:
            self._store.write(fill, meta)
        except StateError:
            self.metrics.checkpoint_failures.inc()
            raise
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self.metrics.checkpoint_timestamp.set(time.time())
        self.summary.checkpoints += 1

        # 3. Commit only what the checkpoint recorded.
        if consumer is not None and positions:
            consumer.commit(positions)

    # -- loop --------------------------------------------------------------

    def _consume(self, consumer: RecordConsumer, pipeline: Pipeline, assembler: WindowAssembler,
                 processed: dict[PartitionKey, int], stop: StopRequest, exit_at_end: bool) -> None:
        kafka = self.settings.kafka
        while not stop:
            messages = consumer.poll_batch(kafka.poll_timeout_ms, kafka.max_poll_records)
            pipeline.poll_outputs()
            for topic, partition, offset, value in messages:
                self._read(pipeline, assembler, topic, partition, offset, value or b"")
                processed[(topic, partition)] = offset + 1
            for ready in assembler.ready():
                self._process(pipeline, ready)
                self._checkpoint(pipeline, assembler, processed, consumer)
            self.trainer_metrics.pending_windows.set(len(assembler.pending_windows))
            if exit_at_end and not messages and assembler.all_final:
                logger.info("every partition reported the end of its input and no window waits: stopping")
                return

    def _read(self, pipeline: Pipeline, assembler: WindowAssembler, topic: str, partition: int, offset: int,
              value: bytes) -> None:
        self.summary.messages_read += 1
        try:
            status = assembler.add(value)
        except MessageError as error:
            self.summary.messages_rejected += 1
            self.trainer_metrics.messages_rejected.inc()
            logger.error("sentences message %s[%s]@%s rejected: %s", topic, partition, offset, error)
            pipeline.dead_letter.put(Rejected("malformed", str(error), value, Origin(topic, partition, offset)))
            return
        self.trainer_metrics.parts.labels(status=status).inc()

    def _process(self, pipeline: Pipeline, ready: ReadyWindow) -> None:
        if ready.idle_partitions:
            self.summary.idle_partitions += len(ready.idle_partitions)
            self.trainer_metrics.idle_partitions.inc(len(ready.idle_partitions))
            logger.warning("window %s assembled without idle partitions %s (silent for %s s)",
                           ready.index, list(ready.idle_partitions), self.scaleout.idle_timeout_s)
        if ready.incomplete_partitions:
            self.trainer_metrics.incomplete_parts.inc(len(ready.incomplete_partitions))
            logger.error("window %s assembled with chunks missing from partitions %s",
                         ready.index, list(ready.incomplete_partitions))
        window = merge_parts(ready.index, ready.parts, pipeline.windower.sender_filter)
        logger.info("assembled window %s from %s part chunks: %s records, %s senders kept, %s sentences",
                    ready.index, len(ready.parts), window.records, len(window.activity), len(window.sentences))
        result = pipeline.process_window(window)
        self._publish(pipeline, set(window.activity) | set(result.embedding.removed))
        self.summary.windows.append(result.brief())
        self.health.last_window_close_s = time.time()
        self.health.last_window_start_ns = window.start_ns
