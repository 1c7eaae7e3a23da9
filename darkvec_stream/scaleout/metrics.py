"""Prometheus metrics of the scale-out router, window worker and trainer.

Each class registers its metrics in the registry it is given, next to the
pipeline's own metrics for the trainer. Names follow Prometheus rules
(``_total`` counters, unit suffixes).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class WorkerMetrics:
    """Counters of one window worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.records_consumed = Counter(
            "darkvec_worker_records_consumed", "Records read from the by-service topic, accepted or not", registry=r
        )
        self.records_rejected = Counter(
            "darkvec_worker_records_rejected", "Records dead-lettered by the worker, by reason", ["reason"], registry=r
        )
        self.records_duplicate = Counter(
            "darkvec_worker_records_duplicate",
            "Records dropped because a router produced their source message twice", registry=r,
        )
        self.records_misrouted = Counter(
            "darkvec_worker_records_misrouted",
            "Records whose service belongs to another partition (the topic is not partitioned by service)",
            registry=r,
        )
        self.window_parts = Counter(
            "darkvec_worker_window_parts", "Window parts published to the sentences topic", registry=r
        )
        self.messages_sent = Counter(
            "darkvec_worker_sentence_messages", "Messages (part chunks and progress markers) sent", registry=r
        )
        self.partitions_owned = Gauge(
            "darkvec_worker_partitions_owned", "By-service partitions this worker currently owns", registry=r
        )


class RouterMetrics:
    """Counters of one router."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.records_routed = Counter(
            "darkvec_router_records_routed", "Records produced to the by-service topic", ["partition"], registry=r
        )
        self.records_rejected = Counter(
            "darkvec_router_records_rejected", "Records the router could not decode, by reason", ["reason"], registry=r
        )


class TrainerMetrics:
    """Counters of the trainer's window assembly."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.parts = Counter(
            "darkvec_trainer_part_chunks",
            "Window part chunks read, by status (accepted, duplicate, already_processed)", ["status"], registry=r,
        )
        self.messages_rejected = Counter(
            "darkvec_trainer_messages_rejected", "Sentences messages that could not be read (dead-lettered)",
            registry=r,
        )
        self.idle_partitions = Counter(
            "darkvec_trainer_idle_partitions",
            "Partitions treated as empty in a window because they stayed silent past idle_timeout_s", registry=r,
        )
        self.incomplete_parts = Counter(
            "darkvec_trainer_incomplete_parts", "Window parts merged with chunks missing", registry=r
        )
        self.pending_windows = Gauge(
            "darkvec_trainer_pending_windows", "Windows waiting for a partition's progress", registry=r
        )
