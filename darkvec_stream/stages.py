"""Build each stage from the settings: the only place that maps config keys to constructors.

Stages take plain constructor arguments; this module reads ``Settings`` and
passes the values on, so the stages stay testable without a configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from darkvec_stream.alerts import AlertDispatcher, FileSink, HecSink, KafkaSink, RateLimit, Secret, SyslogSink
from darkvec_stream.alerts.model import AlertType
from darkvec_stream.alerts.sinks import AlertSink
from darkvec_stream.clusters.alerting import AlertRules
from darkvec_stream.clusters.clustering import SenderClusterer
from darkvec_stream.clusters.drift import ClusterDrift, LabelChanges
from darkvec_stream.clusters.emerging import EmergingGroups
from darkvec_stream.clusters.member_drift import MemberPortDrift
from darkvec_stream.clusters.monitor import ClusterMonitor
from darkvec_stream.clusters.tracking import ClusterTracker
from darkvec_stream.config import Settings
from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.errors import ConfigError
from darkvec_stream.index import SenderIndex
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.security import KafkaSecurity
from darkvec_stream.ingest.deadletter import DeadLetterSink, JsonlDeadLetter, KafkaDeadLetter
from darkvec_stream.labels import KnnLabeller, LabelBook, LabelSource, MiraiSource
from darkvec_stream.windows import DEFAULT_DOMAIN_SERVICES, SenderFilter, Windower, make_services

ProducerFactory = Callable[[], Any]


def build_windower(settings: Settings) -> Windower:
    services = settings.services
    domain_map = {name: list(ports) for name, ports in services.domain_map.items()} or DEFAULT_DOMAIN_SERVICES
    sender_filter = settings.sender_filter
    return Windower(
        window_s=settings.windows.window_s,
        lateness_s=settings.windows.lateness_s,
        services=make_services(
            services.mode, top_n=services.top_n, half_life_s=services.half_life_s, domain_map=domain_map
        ),
        sender_filter=SenderFilter(
            min_packets=sender_filter.min_packets,
            horizon_s=sender_filter.horizon_s,
            bucket_s=sender_filter.bucket_s,
            width=sender_filter.sketch_width,
            depth=sender_filter.sketch_depth,
        ),
    )


def build_embedding(settings: Settings) -> SenderEmbedding:
    e = settings.embedding
    return SenderEmbedding(
        vector_size=e.vector_size,
        context=e.context,
        epochs_per_window=e.epochs_per_window,
        min_count=e.min_count,
        alpha_start=e.alpha_start,
        alpha_end=e.alpha_end,
        negative=e.negative,
        workers=e.workers,
        seed=e.seed,
        max_sentence_words=e.max_sentence_words,
        expiry_s=e.expiry_s,
        compact_every_windows=e.compact_every_windows,
        compact_expired_share=e.compact_expired_share,
        max_pending_senders=e.max_pending_senders,
    )


def build_index(settings: Settings) -> SenderIndex:
    i = settings.index
    return SenderIndex(
        dimension=settings.embedding.vector_size,
        kind=i.kind,
        threads=i.threads,
        hnsw_m=i.hnsw_m,
        hnsw_ef_construction=i.hnsw_ef_construction,
        hnsw_ef_search=i.hnsw_ef_search,
        hnsw_stale_share=i.hnsw_stale_share,
        ivf_nprobe=i.ivf_nprobe,
        ivf_min_train_vectors=i.ivf_min_train_vectors,
    )


def build_label_book(settings: Settings, mirai: MiraiSource) -> LabelBook:
    sources = [LabelSource.from_mapping(dict(entry)) for entry in settings.labels.sources]
    return LabelBook(
        sources,
        mirai=mirai if settings.labels.mirai else None,
        mirai_priority=settings.labels.mirai_priority,
    )


def build_mirai(settings: Settings) -> MiraiSource:
    return MiraiSource(
        min_packets=settings.labels.mirai_min_packets,
        expiry_s=settings.embedding.expiry_s,
        max_senders=settings.labels.mirai_max_senders,
    )


def build_security(settings: Settings) -> KafkaSecurity:
    kafka = settings.kafka
    return KafkaSecurity(
        security_protocol=kafka.security_protocol,
        ssl_cafile=kafka.ssl_cafile,
        ssl_certfile=kafka.ssl_certfile,
        ssl_keyfile=kafka.ssl_keyfile,
        ssl_check_hostname=kafka.ssl_check_hostname,
        sasl_mechanism=kafka.sasl_mechanism,
        sasl_plain_username=kafka.sasl_plain_username,
        sasl_plain_password=kafka.sasl_plain_password,
    )


def build_consumer(settings: Settings, bootstrap: str, security: KafkaSecurity) -> RecordConsumer:
    kafka = settings.kafka
    return RecordConsumer(
        bootstrap,
        [kafka.topic],
        kafka.group_id,
        client_id=kafka.client_id,
        assignment=kafka.assignment,  # type: ignore[arg-type]
        auto_offset_reset=kafka.auto_offset_reset,  # type: ignore[arg-type]
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        max_poll_interval_ms=kafka.max_poll_interval_ms,
        max_poll_records=kafka.max_poll_records,
        group_instance_id=kafka.group_instance_id or None,
        retry_backoff_initial_ms=kafka.retry_backoff_initial_ms,
        retry_backoff_max_ms=kafka.retry_backoff_max_ms,
        commit_timeout_s=kafka.commit_timeout_s,
        health_check_interval_s=kafka.health_check_interval_s,
        metadata_timeout_s=kafka.metadata_timeout_s,
        security=security,
    )


def build_labeller(settings: Settings) -> KnnLabeller:
    k = settings.knn
    return KnnLabeller(
        k=k.k,
        vote=k.vote,
        min_similarity=k.min_similarity,
        min_margin=k.min_margin,
        min_support=k.min_support,
        weighting=k.weighting,
        candidate_factor=k.candidate_factor,
    )


def build_monitor(settings: Settings) -> ClusterMonitor:
    c, t, d, a = settings.clusters, settings.tracking, settings.drift, settings.alerts
    return ClusterMonitor(
        clusterer=SenderClusterer(
            method=c.method,  # type: ignore[arg-type]
            k=c.k,
            resolution=c.resolution,
            min_similarity=c.min_similarity,
            min_cluster_size=c.min_cluster_size,
            seed=c.seed,
            split_min_gain=c.split_min_gain if c.split else None,
            split_resolution=c.split_resolution,
            split_max_depth=c.split_max_depth,
            large_min_senders=c.large_min_senders,
            ivf_nprobe=c.ivf_nprobe,
        ),
        tracker=ClusterTracker(
            min_jaccard=t.min_jaccard,
            min_overlap=t.min_overlap,
            growth_ratio=t.growth_ratio,
            reemerge_windows=t.reemerge_windows,
        ),
        drift=ClusterDrift(
            port_jaccard_threshold=d.port_jaccard_threshold,
            port_change_windows=d.port_change_windows,
            port_min_share=d.port_min_share,
            port_min_packets=d.port_min_packets,
            size_burst_ratio=d.size_burst_ratio,
            size_burst_min_senders=d.size_burst_min_senders,
            size_burst_windows=d.size_burst_windows,
            port_new_share_min=d.port_new_share_min,
            port_set_min_coverage=d.port_set_min_coverage,
            min_history_windows=d.min_history_windows,
            adwin_delta=d.adwin_delta,
            size_burst_min_port_share=d.size_burst_min_port_share,
            port_rule=d.cluster_port_rule,
        ),
        member_drift=MemberPortDrift(
            min_senders=d.member_port_min_senders,
            min_moved_share=d.member_port_min_moved_share,
            moved_packet_share=d.member_port_moved_packet_share,
            jaccard_threshold=d.port_jaccard_threshold,
            port_min_share=d.port_min_share,
            stable_windows=d.member_port_stable_windows,
            confirm_windows=d.member_port_confirm_windows,
            history_windows=d.member_port_history_windows,
            max_senders=d.member_port_max_senders,
        ),
        label_changes=LabelChanges(min_confidence=a.label_change_min_confidence,
                                   persist_windows=a.label_change_persist_windows),
        rules=AlertRules(
            min_cluster_size=a.min_cluster_size,
            min_unknown_share=a.min_unknown_share,
            warmup_windows=a.warmup_windows,
            min_newcomer_share=a.min_newcomer_share,
            emerging_min_size=a.emerging_min_size,
            min_cluster_age_windows=a.min_cluster_age_windows,
            detector_alerts=a.detector_alerts,
            reemerge_min_absent_windows=a.reemerge_min_absent_windows,
            reemerge_min_jaccard=a.reemerge_min_jaccard,
            reemerge_min_silent_share=a.reemerge_min_silent_share,
            new_cluster_min_port_share=a.new_cluster_min_port_share,
            new_cluster_min_co_active_share=a.new_cluster_min_co_active_share,
        ),
        size_burst_newcomer_windows=d.size_burst_newcomer_windows,
        emerging=EmergingGroups(
            newcomer_windows=c.emerging_newcomer_windows,
            min_group_size=a.emerging_min_size,
            novel_port_max_share=c.emerging_novel_port_max_share,
            enabled=c.emerging,
        ),
    )


def build_dispatcher(
    settings: Settings, output_dir: Path, producer_factory: ProducerFactory | None = None
) -> AlertDispatcher:
    a = settings.alerts
    limits = {}
    for name, per_hour in a.rate_limits.items():
        try:
            alert_type = AlertType(name)
        except ValueError:
            allowed = ", ".join(t.value for t in AlertType)
            raise ConfigError(f"alerts.rate_limits: unknown alert type {name!r}; allowed: {allowed}") from None
        limits[alert_type] = RateLimit(per_hour=float(per_hour), burst=max(1, int(per_hour)))
    sinks = [_alert_sink(dict(entry), position, settings, output_dir, producer_factory)
             for position, entry in enumerate(a.outputs)]
    return AlertDispatcher(
        sinks,
        type_limits=limits,
        cluster_limit=RateLimit(per_hour=a.cluster_rate_limit_per_hour, burst=a.cluster_rate_limit_burst),
        ledger_max_ids=a.dedup_max_ids,
    )


def _alert_sink(
    entry: dict[str, Any], position: int, settings: Settings, output_dir: Path,
    producer_factory: ProducerFactory | None,
) -> AlertSink:
    kind = entry.pop("type", None)
    fmt = entry.pop("format", "jsonl")
    where = f"alerts.outputs[{position}]"
    name = entry.pop("name", None)
    try:
        if kind == "file":
            return FileSink(output_dir / str(entry.pop("path", "alerts.jsonl")), fmt, name=name, **entry)
        if kind == "syslog":
            return SyslogSink(format=fmt, name=name, **entry)
        if kind == "splunk-hec":
            token = Secret(str(entry.pop("token", "")))
            return HecSink(token=token, name=name, **entry)
        if kind == "kafka":
            if producer_factory is None:
                raise ConfigError(f"{where}: a kafka alert output needs the daemon's Kafka connection")
            topic = str(entry.pop("topic", settings.kafka.alert_topic))
            return KafkaSink(producer_factory(), topic, fmt, name=name, **entry)
    except TypeError as error:
        raise ConfigError(f"{where}: invalid option for a {kind} output: {error}") from None
    raise ConfigError(f"{where}: type {kind!r} is invalid; allowed: file, kafka, syslog, splunk-hec")


def file_outputs(settings: Settings, output_dir: Path) -> list[Path]:
    """Files that the pipeline appends to, whose sizes a checkpoint records."""
    paths = [
        output_dir / str(entry.get("path", "alerts.jsonl"))
        for entry in settings.alerts.outputs
        if entry.get("type") == "file"
    ]
    if settings.deadletter.sink == "file":
        paths.append(output_dir / settings.deadletter.path)
    return paths


def build_dead_letter(
    settings: Settings, output_dir: Path, producer_factory: ProducerFactory | None = None
) -> DeadLetterSink:
    d = settings.deadletter
    if d.sink == "kafka":
        if producer_factory is None:
            raise ConfigError("deadletter.sink is kafka, but this command has no Kafka connection; use file")
        return KafkaDeadLetter(producer_factory(), settings.kafka.deadletter_topic, max_buffered=d.buffer_max)
    return JsonlDeadLetter(output_dir / d.path, max_buffered=d.buffer_max)
