"""The daemon: sources in, pipeline in the middle, checkpoints and commits out.

This module only wires parts together. It reads records from Kafka (or from
files for backfills), hands them to the ``Pipeline``, checkpoints after every
closed window, commits the checkpoint's offsets, serves metrics, and shuts
down cleanly on SIGTERM or SIGINT. The stages themselves live in their
subpackages.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from kafka.errors import KafkaError

from darkvec_stream.checkpoint import CheckpointStore
from darkvec_stream.config import Settings
from darkvec_stream.errors import ConfigError, DarkvecError, InputError, StateError
from darkvec_stream.ingest import get_decoder, read_file
from darkvec_stream.ingest.record import Origin, Rejected
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.stages import build_consumer, build_security, file_outputs
from darkvec_stream.logs import log_context
from darkvec_stream.metrics import Health, MetricsServer, PipelineMetrics
from darkvec_stream.pipeline import Pipeline, WindowResult
from darkvec_stream.scaleout.lifecycle import StopRequest
from darkvec_stream.query.server import QueryServer, serve_query
from darkvec_stream.query.snapshot import SnapshotPublisher

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]


@dataclass
class RunSummary:
    """Counts and window results of one run, for the command line and the demo."""

    records_read: int = 0
    records_accepted: int = 0
    records_rejected: int = 0
    windows: list[WindowResult] = field(default_factory=list)
    records_late: int = 0
    checkpoints: int = 0
    restored_from: str | None = None
    stopped_by_signal: bool = False


class Daemon:
    """Run the pipeline over Kafka or files with checkpoints, metrics and clean shutdown."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: PipelineMetrics | None = None,
        dump_sentences: Path | None = None,
    ) -> None:
        self.settings = settings
        self.dump_sentences = dump_sentences
        self.output_dir = Path(settings.output.directory)
        self.metrics = metrics or PipelineMetrics()
        self.health = Health(stale_after_s=2.0 * settings.windows.window_s)
        self.stop = StopRequest("checkpoint")
        self.summary = RunSummary()
        self.pipeline: Pipeline | None = None
        # The query API reads snapshots published after each window, never
        # the live pipeline objects.
        self.snapshots = SnapshotPublisher()
        self.query_server: QueryServer | None = None
        self._store: CheckpointStore | None = None
        # Built here so that invalid TLS or SASL settings fail before any
        # broker, server or file is touched.
        self._security = build_security(settings)

    # -- entry points ------------------------------------------------------

    def run_kafka(self, *, exit_when_idle_s: float | None = None, flush_at_exit: bool = False) -> RunSummary:
        """Consume the configured topic until a signal (or until idle, for finite replays)."""
        with self.stop.installed(), self._metrics_server(), self._query_server(), self._bootstrap() as bootstrap:
            pipeline, offsets = self._open_pipeline()
            if self.summary.restored_from is None:
                # A checkpoint before the first record: it records the sizes
                # of existing output files, so a crash before the first
                # window closes still cuts off the lines written meanwhile.
                self._checkpoint(pipeline, {}, None)
            consumer = self._consumer(bootstrap)
            try:
                with consumer:
                    consumer.seek_to(offsets)
                    processed = dict(offsets)
                    self._consume(consumer, pipeline, processed, exit_when_idle_s)
                    if flush_at_exit and not self.stop:
                        self._record(pipeline.flush())
                    self._checkpoint(pipeline, processed, consumer)
            except KafkaError as error:
                raise DarkvecError(
                    f"Kafka at {bootstrap} failed: {error}; check kafka.bootstrap_servers and that the "
                    "broker is up (the last checkpoint is kept, and a restart resumes from it)"
                ) from error
            pipeline.close()
        if self.pipeline is not None:
            self._note_late(self.pipeline)
        return self.summary

    def _note_late(self, pipeline: Pipeline) -> None:
        self.summary.records_late = pipeline.windower.late_records

    def run_files(self, paths: Sequence[str], *, fmt: str | None = None) -> RunSummary:
        """Feed files straight into the pipeline, then close every window and save the state."""
        fmt = fmt or self.settings.input.format
        for path in paths:
            if not Path(path).is_file():
                raise InputError(f"input file {path} is not found or not a file")
        self._refuse_earlier_results()
        with self.stop.installed(), self._metrics_server(), self._query_server():
            pipeline, _ = self._open_pipeline(restore=False)
            for path in paths:
                self._feed_file(pipeline, path, fmt)
                if self.stop:
                    break
            if not self.stop:
                self._record(pipeline.flush())
            self._checkpoint(pipeline, {}, None)
            pipeline.close()
        self._note_late(pipeline)
        return self.summary

    def _refuse_earlier_results(self) -> None:
        # A backfill starts from an empty model, so appending to an earlier
        # run's alert file would repeat its alerts.
        checkpoints = self.output_dir / self.settings.checkpoint.directory
        earlier = list(checkpoints.glob("ckpt-*")) if checkpoints.is_dir() else []
        earlier += [path for path in file_outputs(self.settings, self.output_dir) if path.exists() and path.stat().st_size]
        if earlier:
            raise InputError(
                f"output directory {self.output_dir} already contains the results of an earlier run "
                f"({earlier[0]}); give another --output, or move the old results away"
            )

    # -- sources -----------------------------------------------------------

    def _consume(
        self,
        consumer: RecordConsumer,
        pipeline: Pipeline,
        processed: dict[PartitionKey, int],
        exit_when_idle_s: float | None,
    ) -> None:
        # ``processed`` maps each partition to the next offset whose record
        # has not reached the pipeline yet; it is what a checkpoint records.
        kafka = self.settings.kafka
        decoder = get_decoder(kafka.format, **dict(kafka.decoder_options))
        idle_since = time.monotonic()
        last_lag_check = 0.0
        while not self.stop:
            messages = consumer.poll_batch(kafka.poll_timeout_ms, kafka.max_poll_records)
            pipeline.poll_outputs()
            if not messages:
                if exit_when_idle_s is not None and time.monotonic() - idle_since >= exit_when_idle_s:
                    if self._caught_up(consumer, processed):
                        logger.info("no records for %.1f s and no lag: stopping", exit_when_idle_s)
                        break
                    idle_since = time.monotonic()
                continue
            idle_since = time.monotonic()
            for topic, partition, offset, value in messages:
                with log_context(topic=topic, partition=partition, offset=offset):
                    records, rejects = decoder.decode_message(value, Origin(topic, partition, offset))
                    records, future = pipeline.screen(records, (topic, partition, offset))
                    rejects = rejects + future
                    self._count(len(records), rejects)
                    results = pipeline.add(records, rejects, (topic, partition, offset))
                processed[(topic, partition)] = offset + 1
                if results:
                    self._record(results)
                    self._checkpoint(pipeline, processed, consumer)
                if self.stop:
                    # Stop mid-batch: one poll can hold hundreds of messages,
                    # and the final checkpoint records ``processed``, not the
                    # consumer's position, so the rest is read after a restart.
                    break
            if time.monotonic() - last_lag_check > 10.0:
                self._publish_lag(consumer)
                last_lag_check = time.monotonic()

    @staticmethod
    def _caught_up(consumer: RecordConsumer, processed: dict[PartitionKey, int]) -> bool:
        # Empty polls do not mean the input has ended while the group join
        # runs (a crashed member keeps its partitions until its session times
        # out) or while the broker is down; flushing then would close windows
        # before their records arrive. Stop only when every partition read so
        # far is assigned here and the last lag reading is zero everywhere.
        assigned = set(consumer.assignment())
        if not assigned or not set(processed) <= assigned:
            return False
        return not any(consumer.lag().values())

    def _feed_file(self, pipeline: Pipeline, path: str, fmt: str) -> None:
        options = dict(self.settings.input.decoder_options)
        batch: list = []
        rejects: list[Rejected] = []
        for item in read_file(path, fmt, **options):
            if isinstance(item, Rejected):
                rejects.append(item)
            else:
                batch.append(item)
            if len(batch) + len(rejects) >= 10_000:
                self._flush_batch(pipeline, batch, rejects)
                batch, rejects = [], []
                if self.stop:
                    return
        self._flush_batch(pipeline, batch, rejects)

    def _flush_batch(self, pipeline: Pipeline, batch: list, rejects: list[Rejected]) -> None:
        batch, future = pipeline.screen(batch, None)
        rejects = rejects + future
        self._count(len(batch), rejects)
        self._record(pipeline.add(batch, rejects, None))

    # -- state -------------------------------------------------------------

    def _open_pipeline(self, restore: bool = True) -> tuple[Pipeline, dict[PartitionKey, int]]:
        settings = self.settings
        self.output_dir.mkdir(parents=True, exist_ok=True)
        offsets: dict[PartitionKey, int] = {}
        pipeline: Pipeline | None = None
        if settings.checkpoint.enabled:
            self._store = CheckpointStore(self.output_dir / settings.checkpoint.directory, settings.checkpoint.keep)
            latest = self._store.latest_or_none() if restore else None
            if latest is not None:
                pipeline = Pipeline.restore(settings, latest.path, self.output_dir, self.metrics, self.dump_sentences)
                offsets = {(topic, int(partition)): int(offset) for topic, partition, offset in latest.meta["offsets"]}
                self.summary.restored_from = str(latest.path)
                logger.info("restored checkpoint %s; resuming at offsets %s", latest.path.name, offsets or "none")
        if pipeline is None:
            pipeline = Pipeline.create(settings, self.output_dir, self.metrics, self.dump_sentences)
        self.pipeline = pipeline
        self._publish_snapshot(pipeline, None)
        self.health.ready = True
        return pipeline, offsets

    def _checkpoint(
        self, pipeline: Pipeline, positions: dict[PartitionKey, int], consumer: RecordConsumer | None
    ) -> None:
        # 1. Make alert and dead-letter files durable, so the checkpoint can
        #    record their sizes and a restore can cut later lines off.
        pipeline.flush_outputs()
        if self._store is None:
            return

        # 2. Write the whole state atomically. Offsets are committed only
        #    after this succeeds, so a crash replays from the checkpoint.
        started = time.perf_counter()
        meta = {
            "offsets": [[topic, partition, offset] for (topic, partition), offset in sorted(positions.items())],
            "windows_closed": pipeline.windows_closed,
        }
        try:
            self._store.write(pipeline.save, meta)
        except StateError:
            self.metrics.checkpoint_failures.inc()
            raise
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self.metrics.checkpoint_timestamp.set(time.time())
        self.summary.checkpoints += 1

        # 3. Commit the offsets the checkpoint recorded.
        if consumer is not None and positions:
            consumer.commit(positions)

    # -- bookkeeping -------------------------------------------------------

    def _count(self, accepted: int, rejects: list[Rejected]) -> None:
        self.summary.records_read += accepted + len(rejects)
        self.summary.records_accepted += accepted
        self.summary.records_rejected += len(rejects)
        self.metrics.records_consumed.inc(accepted + len(rejects))
        self.metrics.records_accepted.inc(accepted)
        self.metrics.count_rejects(reject.reason for reject in rejects)

    def _record(self, results: list[WindowResult]) -> None:
        for result in results:
            self.summary.windows.append(result.brief())
            self.health.last_window_close_s = time.time()
            self.health.last_window_start_ns = result.window.start_ns
        if results and self.pipeline is not None:
            changed: set[str] = set()
            for result in results:
                changed.update(result.window.activity)
                changed.update(result.embedding.removed)
            self._publish_snapshot(self.pipeline, changed)

    def _publish_snapshot(self, pipeline: Pipeline, changed: set[str] | None) -> None:
        """Hand the query API a copy of the state; ``changed=None`` copies every sender."""
        if self.query_server is None:
            return
        self.snapshots.publish(pipeline.embedding, pipeline.history, pipeline.journal, pipeline.sender_labels,
                               pipeline.windows_closed, changed)

    def _publish_lag(self, consumer: RecordConsumer) -> None:
        for (topic, partition), lag in consumer.lag().items():
            self.metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    # -- resources ---------------------------------------------------------

    @contextlib.contextmanager
    def _metrics_server(self) -> Iterator[None]:
        metrics = self.settings.metrics
        if not metrics.enabled:
            yield
            return
        try:
            server = MetricsServer(self.metrics.registry, self.health, metrics.host, metrics.port).start()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"metrics.port {metrics.port} on {metrics.host} is in use, perhaps by another "
                    "darkvec-stream; set metrics.port to a free port, 0 for any, or metrics.enabled=false"
                ) from None
            raise ConfigError(f"metrics server cannot listen on {metrics.host}:{metrics.port}: {error.strerror}") from None
        try:
            yield
        finally:
            server.stop()

    @contextlib.contextmanager
    def _query_server(self) -> Iterator[None]:
        with serve_query(self.settings, self.snapshots) as server:
            self.query_server = server
            try:
                yield
            finally:
                self.query_server = None

    @contextlib.contextmanager
    def _bootstrap(self) -> Iterator[str]:
        configured = self.settings.kafka.bootstrap_servers
        if configured != "embedded":
            yield configured
            return
        with EmbeddedBroker() as broker:
            logger.info("embedded broker listening on %s", broker.bootstrap_servers)
            yield broker.bootstrap_servers

    def _consumer(self, bootstrap: str) -> RecordConsumer:
        return build_consumer(self.settings, bootstrap, self._security)
