"""The typed settings tree: every section, key, default, unit and allowed range.

This module only declares settings. Loading, merging and validation live in
``loader.py``, and ``config.yaml`` at the repository root documents the same
keys for operators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from darkvec_stream.windows.services import DEFAULT_DOMAIN_SERVICES


def setting(
    default: Any,
    help: str,
    *,
    unit: str = "",
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting with its documentation and constraints."""
    metadata = {
        "help": help,
        "unit": unit,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "secret": secret,
    }
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: _copy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = setting(
        "embedded",
        "Comma-separated host:port list, or 'embedded' to start a local test broker "
        "(Tansu, memory storage, 127.0.0.1) for the life of the process",
    )
    topic: str = setting("darkvec.records", "Topic the daemon consumes records from")
    format: str = setting(
        "record-csv",
        "Decoder for message payloads",
        choices=("record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn"),
    )
    decoder_options: dict[str, Any] = setting(
        {}, "Options passed to the decoder, for example {preset: goflow2} for jsonl"
    )
    group_id: str = setting("darkvec-stream", "Consumer group id")
    client_id: str = setting("darkvec-stream", "Client id reported to the broker")
    auto_offset_reset: str = setting(
        "earliest",
        "Where a group without committed offsets starts",
        choices=("earliest", "latest"),
    )
    session_timeout_ms: int = setting(
        6000, "Consumer group session timeout", unit="ms", minimum=1000
    )
    heartbeat_interval_ms: int = setting(
        1000, "Consumer heartbeat interval", unit="ms", minimum=100
    )
    max_poll_records: int = setting(
        500, "Maximum messages returned by one poll", unit="messages", minimum=1
    )
    max_poll_interval_ms: int = setting(
        300000, "Maximum time between polls before the group evicts the consumer",
        unit="ms", minimum=1000,
    )
    poll_timeout_ms: int = setting(500, "Time one poll waits for data", unit="ms", minimum=1)
    assignment: str = setting(
        "group",
        "group joins the consumer group (about 3 s with the default timeouts); manual takes every "
        "partition with assign() and never rebalances, while commits still go to group_id",
        choices=("group", "manual"),
    )
    group_instance_id: str = setting("", "Static group membership id; empty for dynamic membership")
    retry_backoff_initial_ms: int = setting(
        500, "First wait before retrying a failed poll, commit or broker check", unit="ms", minimum=1
    )
    retry_backoff_max_ms: int = setting(30000, "Longest wait between retries", unit="ms", minimum=1)
    commit_timeout_s: float = setting(
        300.0, "How long a commit is retried before the daemon stops with an error", unit="s", minimum=1.0
    )
    health_check_interval_s: float = setting(
        5.0, "Time without records before the consumer checks that the broker still answers",
        unit="s", minimum=0.1,
    )
    metadata_timeout_s: float = setting(
        30.0, "How long manual assignment waits for the topic to appear", unit="s", minimum=0.1
    )
    security_protocol: str = setting(
        "PLAINTEXT",
        "Kafka security protocol",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    ssl_cafile: str = setting("", "CA bundle for TLS (PEM path)")
    ssl_certfile: str = setting("", "Client certificate for TLS (PEM path)")
    ssl_keyfile: str = setting("", "Client private key for TLS (PEM path)")
    ssl_check_hostname: bool = setting(True, "Check that the broker certificate names the broker host")
    sasl_mechanism: str = setting(
        "",
        "SASL mechanism",
        choices=("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    )
    sasl_plain_username: str = setting("", "SASL user name")
    sasl_plain_password: str = setting("", "SASL password", secret=True)
    alert_topic: str = setting("darkvec.alerts", "Topic for alerts when an alert output has type kafka")
    deadletter_topic: str = setting(
        "darkvec.deadletter", "Topic for rejected records when deadletter.sink is kafka"
    )


@dataclass(frozen=True)
class InputSettings:
    format: str = setting(
        "record-csv",
        "Decoder for files given to 'run --input' and 'replay'",
        choices=("record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn", "pcap"),
    )
    decoder_options: dict[str, Any] = setting(
        {}, "Options passed to the file decoder, for example {preset: marx-iptables} for csv, or "
        "{max_line_bytes: 65536}: longer lines are rejected as line_too_long without being held whole"
    )


@dataclass(frozen=True)
class DeadLetterSettings:
    sink: str = setting("file", "Where rejected records go", choices=("file", "kafka"))
    path: str = setting(
        "deadletter.jsonl", "JSON-lines file for rejected records, relative to output.directory"
    )
    buffer_max: int = setting(
        10000, "Rejected records kept in memory while the sink is unavailable",
        unit="records", minimum=1,
    )


@dataclass(frozen=True)
class WindowSettings:
    window_s: int = setting(3600, "Length of one event-time tumbling window", unit="s", minimum=1)
    lateness_s: int = setting(
        300,
        "Allowed lateness: the watermark is the largest event time seen minus this",
        unit="s",
        minimum=0,
    )
    max_future_s: int = setting(
        86400,
        "Records dated more than this after the wall clock are rejected as bad_timestamp, because "
        "one of them would move the watermark and make every later record late",
        unit="s",
        minimum=0,
    )


@dataclass(frozen=True)
class ServiceSettings:
    mode: str = setting(
        "domain",
        "How records are split into services (one sentence stream each)",
        choices=("single", "auto", "domain", "hybrid"),
    )
    top_n: int = setting(
        2500, "Number of port/protocol pairs that get their own service in auto and hybrid mode "
        "(i-DarkVec found 2,500 best)", unit="services", minimum=1,
    )
    half_life_s: int = setting(
        604800, "Half-life of the decayed packet counts that rank port/protocol pairs for top_n",
        unit="s", minimum=1,
    )
    domain_map: dict[str, list[str]] = setting(
        DEFAULT_DOMAIN_SERVICES,
        "Service name to destination ports for domain and hybrid mode: PORT or LOW-HIGH, with /tcp or "
        "/udp (a bare port means both). Ports no service lists fall into catch-alls for system "
        "(0-1023), user (1024-49151) and ephemeral (49152-65535) ports per protocol, and ICMP has "
        "its own service; see docs/windows.md",
    )


@dataclass(frozen=True)
class SenderFilterSettings:
    min_packets: int = setting(
        10, "Packets a sender needs over the horizon before it enters sentences",
        unit="packets", minimum=1,
    )
    horizon_s: int = setting(
        30 * 86400, "Trailing horizon of the packet count", unit="s", minimum=1
    )
    bucket_s: int = setting(86400, "Time bucket of one count-min sketch in the horizon", unit="s", minimum=1)
    sketch_width: int = setting(
        262144, "Counters per row of the count-min sketch (the defaults use 31 MiB and made the same "
        "decisions as exact counting on a real six-month log)", unit="counters", minimum=1024
    )
    sketch_depth: int = setting(4, "Rows of the count-min sketch", unit="rows", minimum=1, maximum=16)


@dataclass(frozen=True)
class EmbeddingSettings:
    vector_size: int = setting(50, "Dimensions of a sender vector", minimum=2)
    context: int = setting(25, "Word2Vec context window", unit="senders", minimum=1)
    epochs_per_window: int = setting(3, "Training passes over each window", minimum=1)
    min_count: int = setting(
        1, "Occurrences in sentences, cumulative over windows, before a sender is embedded",
        minimum=1,
    )
    negative: int = setting(5, "Negative samples per positive pair", minimum=1)
    alpha_start: float = setting(0.025, "Learning rate at the start of each window", minimum=0.0)
    alpha_end: float = setting(0.0001, "Learning rate at the end of each window", minimum=0.0)
    workers: int = setting(
        1, "gensim training threads; 1 makes training deterministic", minimum=1
    )
    seed: int = setting(15, "Random seed of the model", minimum=0)
    max_sentence_words: int = setting(
        10000, "Longer sentences are split (gensim silently truncates above 10,000); must exceed context",
        unit="words", minimum=10, maximum=10000,
    )
    expiry_s: int = setting(
        7 * 86400, "Senders not seen for this long leave the model and the index", unit="s", minimum=1
    )
    compact_every_windows: int = setting(
        24, "How often the model is compacted to drop expired senders", unit="windows", minimum=1
    )
    compact_expired_share: float = setting(
        0.25, "Compact early once this share of the vocabulary has expired", unit="share",
        minimum=0.001, maximum=1.0,
    )
    max_pending_senders: int = setting(
        1_000_000, "Senders under min_count remembered at most (bounds memory under floods)",
        unit="senders", minimum=1,
    )


@dataclass(frozen=True)
class IndexSettings:
    kind: str = setting("flat", "FAISS index type", choices=("flat", "hnsw", "ivf"))
    threads: int = setting(1, "OpenMP threads for FAISS", minimum=1)
    ivf_nprobe: int = setting(32, "IVF lists visited per query", minimum=1)
    hnsw_ef_search: int = setting(64, "HNSW search breadth", minimum=1)
    hnsw_m: int = setting(32, "HNSW links per node", minimum=2)
    hnsw_ef_construction: int = setting(40, "HNSW build breadth", minimum=1)
    hnsw_stale_share: float = setting(
        0.2, "HNSW cannot delete: rebuild once this share of entries is stale", unit="share",
        minimum=0.01, maximum=1.0,
    )
    ivf_min_train_vectors: int = setting(
        20000, "IVF searches exactly until this many senders are indexed", unit="senders", minimum=1
    )


@dataclass(frozen=True)
class LabelSettings:
    sources: list[dict[str, Any]] = setting(
        [],
        "Ground-truth sources: list of {name, path, format, label, priority, label_from_comment, "
        "ip_column, label_column, min_prefix_v4 (default 8), min_prefix_v6 (default 16); shorter "
        "prefixes are skipped so that a stray 0.0.0.0/0 cannot label everyone}. Formats: auto, csv, list (one IP or CIDR per line), misp, nict, "
        "nict-scanorg. Higher priority wins a conflict, then the longest prefix, then the first source",
    )
    mirai: bool = setting(True, "Label senders with the Mirai fingerprint as 'mirai'")
    mirai_min_packets: int = setting(
        1, "Fingerprinted packets before a sender is labelled mirai", unit="packets", minimum=1
    )
    mirai_priority: int = setting(
        10, "Priority of the Mirai fingerprint against list sources (higher wins; sources default to 0)"
    )
    mirai_max_senders: int = setting(
        1_000_000, "Fingerprinted senders remembered at most", unit="senders", minimum=1
    )
    reload_s: int = setting(60, "How often label sources are checked for changes", unit="s", minimum=1)


@dataclass(frozen=True)
class KnnSettings:
    k: int = setting(7, "Labelled neighbours that vote", minimum=1)
    vote: str = setting(
        "majority",
        "Vote rule; darkvec-compat reproduces the published code's biased vote, for comparison only",
        choices=("majority", "darkvec-compat"),
    )
    min_similarity: float = setting(
        0.5, "Abstain when the best neighbour is less similar than this", unit="cosine",
        minimum=-1.0, maximum=1.0,
    )
    min_margin: float = setting(
        0.3, "Abstain when the winner's share minus the runner-up's is below this", unit="share",
        minimum=0.0, maximum=1.0,
    )
    min_support: float = setting(
        0.25, "Abstain unless this share of the k nearest neighbours, labelled or not, carries the "
        "winning label; it stops a few distant labelled senders from labelling a sender inside an "
        "unlabelled group", unit="share", minimum=0.0, maximum=1.0,
    )
    weighting: str = setting(
        "uniform", "Each voter counts 1 (uniform) or its cosine similarity", choices=("uniform", "similarity")
    )
    candidate_factor: int = setting(
        4, "Neighbours fetched per query, as a multiple of k, to find k labelled voters", minimum=1
    )


@dataclass(frozen=True)
class ClusterSettings:
    method: str = setting(
        "leiden",
        "Clustering method; darkvec-paper is the published k'=3 Louvain recipe",
        choices=("leiden", "louvain", "hdbscan", "darkvec-paper"),
    )
    every_windows: int = setting(1, "Cluster every N closed windows", unit="windows", minimum=1)
    active_s: int = setting(
        86400, "Senders seen within this time before a window's end are clustered", unit="s", minimum=1
    )
    k: int = setting(10, "Neighbours per sender in the kNN graph", minimum=1)
    resolution: float = setting(
        0.5, "Modularity resolution (higher gives smaller clusters); at 0.8 and above Leiden cut "
        "large groups apart on synthetic nested groups", minimum=0.0,
    )
    min_similarity: float = setting(
        0.5, "Graph edges below this cosine similarity are dropped; random 50-dimensional vectors "
        "already reach 0.4-0.5 with their nearest neighbours, so lower values chain groups together",
        unit="cosine", minimum=-1.0, maximum=1.0,
    )
    min_cluster_size: int = setting(5, "Smaller clusters are reported as noise", unit="senders", minimum=1)
    seed: int = setting(15, "Random seed of the community detection", minimum=0)
    split: bool = setting(
        True, "Partition each cluster's subgraph again (leiden and louvain) and keep the split when the "
        "members' silhouette rises; it separates small scanner organisations that resolution 0.5 merges"
    )
    split_min_gain: float = setting(
        0.05, "Rise of the members' mean silhouette a split must bring to be kept", unit="silhouette",
        minimum=0.0, maximum=2.0,
    )
    split_resolution: float = setting(1.0, "Modularity resolution of the second partition", minimum=0.0)
    split_max_depth: int = setting(2, "Levels of splits below the first partition", unit="levels", minimum=1)
    large_min_senders: int = setting(
        100000, "From this many senders on, the kNN graph comes from an IVF index, Leiden runs in igraph, "
        "and clusters are not split again",
        unit="senders", minimum=2,
    )
    ivf_nprobe: int = setting(16, "IVF lists searched per sender above large_min_senders", unit="lists", minimum=1)
    emerging: bool = setting(
        True, "Split newcomers that share ports new to the telescope into their own cluster, before "
        "the embedding has placed them"
    )
    emerging_newcomer_windows: int = setting(
        6, "A sender counts as a newcomer for this many clustering runs after it is first clustered",
        unit="runs", minimum=1,
    )
    emerging_novel_port_max_share: float = setting(
        0.001, "A port is new to the telescope below this share of the established senders' packets",
        unit="share", minimum=0.0, maximum=1.0,
    )


@dataclass(frozen=True)
class TrackingSettings:
    min_jaccard: float = setting(
        0.3, "Member overlap needed to keep a cluster id across runs", unit="Jaccard",
        minimum=0.0, maximum=1.0,
    )
    min_overlap: float = setting(
        0.8, "Share of the smaller cluster two clusters must share to be linked (split, merge)",
        unit="share", minimum=0.0, maximum=1.0,
    )
    growth_ratio: float = setting(
        1.5, "Size change between runs that counts as grown or shrunk", unit="ratio", minimum=1.0
    )
    reemerge_windows: int = setting(
        168, "How far back a vanished cluster can be matched again", unit="windows", minimum=1
    )


@dataclass(frozen=True)
class DriftSettings:
    port_jaccard_threshold: float = setting(
        0.5, "A cluster's port set has changed when its Jaccard index against the cluster's "
        "history falls below this", unit="Jaccard", minimum=0.0, maximum=1.0,
    )
    port_change_windows: int = setting(
        2, "Consecutive low-Jaccard windows with traffic needed to confirm a port-set change", unit="windows",
        minimum=1,
    )
    port_new_share_min: float = setting(
        0.5, "Share of a window's packets on ports outside the cluster's port set needed for a port-set change",
        unit="share", minimum=0.0, maximum=1.0,
    )
    port_set_min_coverage: float = setting(
        0.8, "Share of a cluster's history packets its port set must hold for the port rule to apply",
        unit="share", minimum=0.0, maximum=1.0,
    )
    port_min_share: float = setting(
        0.05, "Share of a cluster's packets a port needs to belong to its port set", unit="share",
        minimum=0.0, maximum=1.0,
    )
    port_min_packets: int = setting(
        20, "Windows where a cluster sent fewer packets are skipped by the port rule", unit="packets", minimum=1
    )
    size_burst_ratio: float = setting(
        2.0, "Size burst: cluster size against its recent mean size", unit="ratio", minimum=1.0
    )
    size_burst_min_senders: int = setting(
        10, "Minimum growth above the recent mean size for a size burst", unit="senders", minimum=1
    )
    size_burst_windows: int = setting(
        2, "Consecutive windows a size burst must last before it fires", unit="windows", minimum=1
    )
    min_history_windows: int = setting(
        12, "History a cluster needs before a drift rule can fire", unit="windows", minimum=1
    )
    adwin_delta: float = setting(1e-5, "ADWIN confidence bound (smaller raises fewer alarms)", minimum=1e-12, maximum=1.0)
    size_burst_min_port_share: float = setting(
        0.8, "Size burst: share of the new senders that joined which must share one port (noise drifting in "
        "shares none)", unit="share", minimum=0.0, maximum=1.0,
    )
    size_burst_newcomer_windows: int = setting(
        24, "Size burst: joined senders count only when first seen within this many windows (senders "
        "moved over from other clusters are a reshuffle, not growth)", unit="windows", minimum=1,
    )
    cluster_port_rule: bool = setting(
        False, "Also run the whole-cluster packet-share port rule; the per-sender rule (member_port_*) "
        "already covers whole clusters without mistaking senders that join for a change",
    )
    member_port_min_senders: int = setting(
        5, "Senders of one subgroup (cluster, /24 or label) that must move to new ports in the same window "
        "to raise a port-set change", unit="senders", minimum=1,
    )
    member_port_min_moved_share: float = setting(
        0.8, "Share of the subgroup's active senders with a port set that must have moved", unit="share",
        minimum=0.0, maximum=1.0,
    )
    member_port_moved_packet_share: float = setting(
        0.5, "A sender moved when this share of its packets in the window went to ports outside its own "
        "port set", unit="share", minimum=0.0, maximum=1.0,
    )
    member_port_stable_windows: int = setting(
        2, "Active windows in a row a sender must keep its ports before its moves count (port rotators never do)",
        unit="windows", minimum=1,
    )
    member_port_confirm_windows: int = setting(
        2, "Windows a sender's move waits for the rest of its subgroup before it becomes its history",
        unit="windows", minimum=1,
    )
    member_port_history_windows: int = setting(
        168, "How long a port stays in a sender's port set after its last use", unit="windows", minimum=1
    )
    member_port_max_senders: int = setting(
        200_000, "Most senders whose port sets are kept; the least recently live are dropped first",
        unit="senders", minimum=1,
    )


@dataclass(frozen=True)
class AlertSettings:
    min_cluster_size: int = setting(10, "Smallest cluster that raises a new-cluster alert", unit="senders", minimum=1)
    warmup_windows: int = setting(
        24, "Clustering runs before cluster alerts start; every cluster is new on the first run",
        unit="runs", minimum=1,
    )
    min_unknown_share: float = setting(
        0.5, "Share of unlabelled members a new cluster needs to raise an alert", unit="share",
        minimum=0.0, maximum=1.0,
    )
    label_change_min_confidence: float = setting(
        0.8, "Confidence a sender's new label needs to raise a label-change alert", unit="share",
        minimum=0.0, maximum=1.0,
    )
    label_change_persist_windows: int = setting(
        2, "Windows with the sender active in which a new label must hold before it raises an alert",
        unit="windows", minimum=1,
    )
    min_newcomer_share: float = setting(
        0.5, "A split-off cluster raises a new-cluster alert when this share of it was not in its parent",
        unit="share", minimum=0.0, maximum=1.0,
    )
    emerging_min_size: int = setting(
        5, "Smallest group of newcomers on new ports that raises a new-cluster alert", unit="senders", minimum=2
    )
    min_cluster_age_windows: int = setting(
        6, "Windows a cluster must be tracked before it can raise a drift alert", unit="windows", minimum=0
    )
    detector_alerts: bool = setting(
        False, "Raise low-severity drift alerts on ADWIN or Page-Hinkley alarms alone"
    )
    reemerge_min_absent_windows: int = setting(
        24, "Windows a cluster must have been gone before its return raises an alert", unit="windows", minimum=0
    )
    reemerge_min_jaccard: float = setting(
        0.5, "Member Jaccard index a returning cluster needs with its last run to raise a re-emergence alert",
        unit="Jaccard", minimum=0.0, maximum=1.0,
    )
    new_cluster_min_port_share: float = setting(
        0.8, "Share of a new cluster's members that must share one port to raise a new-cluster alert "
        "(lone scanners and noise share none)", unit="share", minimum=0.0, maximum=1.0,
    )
    new_cluster_min_co_active_share: float = setting(
        0.7, "Share of a new cluster's members whose last traffic must fall within the same two windows "
        "to raise a new-cluster alert (coordinated senders act together, noise does not)", unit="share",
        minimum=0.0, maximum=1.0,
    )
    reemerge_min_silent_share: float = setting(
        0.5, "Share of a returning cluster's members that must have been out of the live senders for "
        "reemerge_min_absent_windows", unit="share", minimum=0.0, maximum=1.0,
    )
    rate_limits: dict[str, int] = setting(
        {"new_cluster": 20, "reemerged_cluster": 20, "cluster_drift": 20, "label_change": 100},
        "Alerts of each type allowed per hour of event time (also the burst); the rest are "
        "suppressed and counted",
        unit="alerts/h",
    )
    cluster_rate_limit_per_hour: float = setting(
        1.0, "Alerts about one cluster allowed per hour of event time", unit="alerts/h", minimum=0.001
    )
    cluster_rate_limit_burst: int = setting(
        3, "Alerts about one cluster allowed at once before the hourly rate applies", unit="alerts", minimum=1
    )
    dedup_max_ids: int = setting(100000, "Emitted alert ids remembered for deduplication", minimum=1)
    outputs: list[dict[str, Any]] = setting(
        [{"type": "file", "format": "jsonl", "path": "alerts.jsonl"}],
        "Alert outputs: list of {type: file|kafka|syslog|splunk-hec, format: "
        "jsonl|ecs|cef|ocsf|stix|splunk-hec, and path (file), topic (kafka), host, port, "
        "protocol udp|tcp (syslog), url and token (splunk-hec)}",
    )


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = setting(True, "Serve Prometheus metrics and the health endpoint")
    host: str = setting("127.0.0.1", "Address the metrics server binds")
    port: int = setting(9108, "Port of the metrics server (0 picks a free one)", minimum=0, maximum=65535)


@dataclass(frozen=True)
class QuerySettings:
    enabled: bool = setting(True, "Serve the read-only query API (senders, clusters, alerts)")
    host: str = setting("127.0.0.1", "Address the query API binds")
    port: int = setting(9109, "Port of the query API (0 picks a free one)", minimum=0, maximum=65535)
    history_windows: int = setting(
        168, "Recent windows whose per-sender packets the API and the report can show", unit="windows", minimum=1
    )
    history_ports: int = setting(
        16, "Busiest destination ports and services remembered per sender", unit="ports", minimum=1
    )
    journal_alerts: int = setting(
        10000, "Recent alerts kept in memory for the API and the report", unit="alerts", minimum=1
    )
    journal_transitions: int = setting(
        100, "Recent transitions kept per cluster", unit="transitions", minimum=1
    )
    max_page_size: int = setting(1000, "Largest page the query API returns", unit="items", minimum=1)
    max_neighbours: int = setting(
        100, "Largest k that /senders/{ip}/neighbours accepts", unit="senders", minimum=1, maximum=10000
    )
    request_timeout_s: float = setting(
        10.0, "Socket timeout of one query API request; a stalled client is dropped after it", unit="s",
        minimum=0.1,
    )
    max_connections: int = setting(
        64, "Query API connections answered at once; more get 503 at once", unit="connections", minimum=1
    )


@dataclass(frozen=True)
class ScaleoutConfig:
    records_topic: str = setting(
        "darkvec.records.by-service", "Topic partitioned by service that routers fill and workers consume"
    )
    sentences_topic: str = setting("darkvec.sentences", "Topic of window parts from workers to the trainer")
    worker_group_id: str = setting("darkvec-stream-workers", "Consumer group of the window workers")
    router_group_id: str = setting("darkvec-stream-routers", "Consumer group of the routers")
    trainer_group_id: str = setting("darkvec-stream-trainer", "Group the trainer commits its offsets under")
    idle_timeout_s: float = setting(
        600.0, "Wall-clock time a window waits for a silent partition before treating it as empty; keep it "
        "above a worker failover", unit="s", minimum=1.0,
    )
    max_message_bytes: int = setting(
        900000, "Largest message a router or worker produces; must fit the broker's message.max.bytes",
        unit="bytes", minimum=10000,
    )


@dataclass(frozen=True)
class CheckpointSettings:
    enabled: bool = setting(True, "Write a checkpoint after each closed window")
    keep: int = setting(3, "Checkpoints kept on disk", minimum=1)
    directory: str = setting("checkpoints", "Checkpoint directory, relative to output.directory")


@dataclass(frozen=True)
class LoggingSettings:
    level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = setting("text", "Log line format", choices=("text", "json"))


@dataclass(frozen=True)
class OutputSettings:
    directory: str = setting("darkvec-out", "Directory for every file the daemon writes")


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    input: InputSettings = field(default_factory=InputSettings)
    deadletter: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    windows: WindowSettings = field(default_factory=WindowSettings)
    services: ServiceSettings = field(default_factory=ServiceSettings)
    sender_filter: SenderFilterSettings = field(default_factory=SenderFilterSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    knn: KnnSettings = field(default_factory=KnnSettings)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    scaleout: ScaleoutConfig = field(default_factory=ScaleoutConfig)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
