"""Every Prometheus metric the daemon exports, defined in one place.

Metric names and types are fixed here and documented in docs/operations.md.
No label takes a sender address or any other unbounded value: label values
come from fixed vocabularies (reject reasons, alert types, transitions), from
the topic's partition numbers, or from ground-truth classes capped at
``MAX_LABEL_CLASSES`` with the rest folded into ``other``.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import ProcessCollector, PlatformCollector

MAX_LABEL_CLASSES = 50
WINDOW_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class PipelineMetrics:
    """The daemon's metrics, registered in one registry.

    >>> metrics = PipelineMetrics()
    >>> metrics.records_consumed.inc(3)
    >>> metrics.registry.get_sample_value("darkvec_records_consumed_total")
    3.0
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._define_ingest()
        self._define_model()
        self._define_clusters()
        self._define_operations()
        self._label_classes: set[str] = set()

    def _define_ingest(self) -> None:
        r = self.registry
        self.records_consumed = Counter(
            "darkvec_records_consumed", "Records read from Kafka or files, accepted or not", registry=r
        )
        self.records_accepted = Counter(
            "darkvec_records_accepted", "Records decoded and handed to windowing", registry=r
        )
        self.records_rejected = Counter(
            "darkvec_records_rejected", "Records that could not be decoded, by reason",
            ["reason"], registry=r,
        )
        self.records_late = Counter(
            "darkvec_records_late", "Records older than the watermark, dead-lettered", registry=r
        )
        self.consumer_lag = Gauge(
            "darkvec_consumer_lag_records", "Records between the consumer position and the end of each partition",
            ["topic", "partition"], registry=r,
        )
        self.watermark = Gauge(
            "darkvec_watermark_timestamp_seconds", "Event-time watermark", registry=r
        )

    def _define_model(self) -> None:
        r = self.registry
        self.windows_closed = Counter("darkvec_windows_closed", "Windows closed and processed", registry=r)
        self.window_close_seconds = Histogram(
            "darkvec_window_close_duration_seconds",
            "Wall time from a window's close to the end of its processing (embedding to alerts)",
            buckets=WINDOW_SECONDS_BUCKETS, registry=r,
        )
        self.words_trained = Counter("darkvec_embedding_words", "Words trained by Word2Vec", registry=r)
        self.words_per_second = Gauge(
            "darkvec_embedding_words_per_second", "Training speed of the last window", registry=r
        )
        self.vocabulary_senders = Gauge(
            "darkvec_vocabulary_senders", "Senders in the Word2Vec vocabulary", registry=r
        )
        self.index_vectors = Gauge("darkvec_index_vectors", "Vectors in the FAISS index", registry=r)
        self.senders_expired = Counter(
            "darkvec_senders_expired", "Senders removed from the model and index by expiry", registry=r
        )
        self.labelled_senders = Gauge(
            "darkvec_labelled_senders", "Active senders by label (ground truth and kNN)",
            ["label"], registry=r,
        )
        self.label_abstains = Counter(
            "darkvec_label_abstains", "kNN decisions that abstained", ["reason"], registry=r
        )

    def _define_clusters(self) -> None:
        r = self.registry
        self.clusters_active = Gauge("darkvec_clusters_active", "Tracked clusters alive after the last run", registry=r)
        self.cluster_transitions = Counter(
            "darkvec_cluster_transitions",
            "Cluster transitions by kind (births, deaths, splits, merges, survivals, reemergences)",
            ["transition"], registry=r,
        )
        self.alerts = Counter("darkvec_alerts", "Alerts emitted, by type", ["type"], registry=r)
        self.alerts_suppressed = Counter(
            "darkvec_alerts_suppressed", "Alerts not emitted, by reason", ["reason"], registry=r
        )

    def _define_operations(self) -> None:
        r = self.registry
        self.checkpoint_seconds = Histogram(
            "darkvec_checkpoint_duration_seconds", "Time to write one checkpoint",
            buckets=WINDOW_SECONDS_BUCKETS, registry=r,
        )
        self.checkpoint_timestamp = Gauge(
            "darkvec_checkpoint_last_success_timestamp_seconds",
            "Wall-clock time of the last successful checkpoint (age = time() - value)", registry=r,
        )
        self.checkpoint_failures = Counter(
            "darkvec_checkpoint_failures", "Checkpoints that failed to write", registry=r
        )
        self.window_close_timestamp = Gauge(
            "darkvec_last_window_close_timestamp_seconds",
            "Wall-clock time the last window finished processing", registry=r,
        )
        self.sink_buffered = Gauge(
            "darkvec_sink_buffered_items", "Items waiting in a sink's retry buffer", ["sink"], registry=r
        )
        self.sink_dropped = Counter(
            "darkvec_sink_dropped", "Items a sink dropped after its buffer filled", ["sink"], registry=r
        )

    def set_label_counts(self, counts: Mapping[str, int]) -> None:
        """Publish active senders per label, folding rare classes into ``other``."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = dict(ranked[:MAX_LABEL_CLASSES])
        other = sum(count for _, count in ranked[MAX_LABEL_CLASSES:])
        if other:
            kept["other"] = kept.get("other", 0) + other
        for label in self._label_classes - set(kept):
            self.labelled_senders.labels(label=label).set(0)
        for label, count in kept.items():
            self.labelled_senders.labels(label=label).set(count)
        self._label_classes |= set(kept)

    def count_rejects(self, reasons: Iterable[str]) -> None:
        for reason in reasons:
            self.records_rejected.labels(reason=reason).inc()
