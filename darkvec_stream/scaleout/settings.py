"""Settings of the scale-out commands (router, worker, trainer) and the service-mode check.

They come from the ``scaleout`` section of the configuration; each
command's options override it. Kafka connection, windows and services
settings come from the other sections.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from darkvec_stream.errors import ConfigError
from darkvec_stream.kafka.security import KafkaSecurity
from darkvec_stream.windows.services import DEFAULT_DOMAIN_SERVICES, ServiceMap, make_services

# Service modes whose record-to-service mapping never changes with traffic.
# ``auto`` and ``hybrid`` rank ports by recent volume, so a record's service,
# and with it its partition, would move while windows are open.
STATIC_SERVICE_MODES = ("domain", "single")

DEFAULT_RECORDS_TOPIC = "darkvec.records.by-service"
DEFAULT_SENTENCES_TOPIC = "darkvec.sentences"
DEFAULT_WORKER_GROUP = "darkvec-stream-workers"
DEFAULT_ROUTER_GROUP = "darkvec-stream-routers"
DEFAULT_TRAINER_GROUP = "darkvec-stream-trainer"
# Ten minutes: a window waits this long for a silent partition. It must be
# longer than a failover (session timeout plus re-reading the open windows),
# or the parts of a partition in failover are dropped as late.
DEFAULT_IDLE_TIMEOUT_S = 600.0
# Below the 1 MiB default of Kafka's message.max.bytes and kafka-python's
# max_request_size, with room for the message envelope.
DEFAULT_MAX_MESSAGE_BYTES = 900_000


@dataclass(frozen=True)
class ScaleoutSettings:
    """Topics, consumer groups and limits of a scale-out deployment.

    ``records_topic`` is the by-service topic that routers (or ``replay
    --partitioning service``) fill and workers consume; ``sentences_topic``
    carries window parts from workers to the trainer.
    """

    records_topic: str = DEFAULT_RECORDS_TOPIC
    sentences_topic: str = DEFAULT_SENTENCES_TOPIC
    worker_group_id: str = DEFAULT_WORKER_GROUP
    router_group_id: str = DEFAULT_ROUTER_GROUP
    trainer_group_id: str = DEFAULT_TRAINER_GROUP
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        for name in ("records_topic", "sentences_topic", "worker_group_id", "router_group_id", "trainer_group_id"):
            if not getattr(self, name):
                raise ConfigError(f"scaleout.{name} is empty: give a topic or group name")
        if self.records_topic == self.sentences_topic:
            raise ConfigError(
                f"scaleout.records_topic and scaleout.sentences_topic are both {self.records_topic!r}: use two topics"
            )
        idle = self.idle_timeout_s
        if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not math.isfinite(idle) or idle <= 0:
            raise ConfigError(f"invalid scaleout.idle_timeout_s {idle!r}: expected a positive number of seconds")
        size = self.max_message_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 10_000:
            raise ConfigError(f"invalid scaleout.max_message_bytes {size!r}: expected an integer >= 10000")


def check_service_mode(mode: str) -> None:
    """Raise ``ConfigError`` unless ``services.mode`` gives every record a fixed service."""
    if mode not in STATIC_SERVICE_MODES:
        raise ConfigError(
            f"services.mode {mode!r} cannot be scaled out: its services follow traffic volume, so records "
            "would change partition while windows are open; set services.mode to domain (or single, "
            "which runs on one partition) for the router, workers and trainer"
        )


def build_services(settings: Any) -> ServiceMap:
    """Build the configured service map, rejecting modes that cannot be scaled out.

    ``settings`` is the loaded ``Settings``; its ``services`` section is read.
    """
    services = settings.services
    check_service_mode(services.mode)
    domain_map = {name: list(ports) for name, ports in services.domain_map.items()} or DEFAULT_DOMAIN_SERVICES
    return make_services(services.mode, top_n=services.top_n, half_life_s=services.half_life_s, domain_map=domain_map)


def add_scaleout_options(parser: argparse.ArgumentParser, *, group: str) -> None:
    """Add the topic, group and limit options every scale-out command shares.

    ``group`` names the ``scaleout`` key of this command's consumer group.
    Options left out keep the value of the configuration.
    """
    parser.add_argument("--records-topic", default=None, metavar="TOPIC",
                        help=f"the topic partitioned by service (default: scaleout.records_topic, "
                             f"{DEFAULT_RECORDS_TOPIC})")
    parser.add_argument("--sentences-topic", default=None, metavar="TOPIC",
                        help=f"the topic of window parts from workers to the trainer (default: "
                             f"scaleout.sentences_topic, {DEFAULT_SENTENCES_TOPIC})")
    parser.add_argument("--group-id", default=None, metavar="GROUP",
                        help=f"consumer group of this command's instances (default: scaleout.{group})")
    parser.add_argument("--max-message-bytes", type=int, default=None, metavar="BYTES",
                        help=f"largest message produced, in bytes; must fit the broker's limit "
                             f"(default: scaleout.max_message_bytes, {DEFAULT_MAX_MESSAGE_BYTES})")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve /metrics on metrics.host at this port (default: metrics.port when "
                             "metrics.enabled; give each instance on one host its own port)")


def scaleout_from_args(args: argparse.Namespace, settings: Any, **extra: Any) -> ScaleoutSettings:
    """Build ``ScaleoutSettings`` from the ``scaleout`` section, overridden by the options given.

    ``extra`` maps other fields to a command's own option values; ``None``
    keeps the configured value.
    """
    configured = settings.scaleout
    chosen = {
        "records_topic": args.records_topic,
        "sentences_topic": args.sentences_topic,
        "max_message_bytes": args.max_message_bytes,
        **extra,
    }
    fields = {name: getattr(configured, name) for name in ScaleoutSettings.__dataclass_fields__}
    fields.update({name: value for name, value in chosen.items() if value is not None})
    return ScaleoutSettings(**fields)


def consumer_options(settings: Any) -> dict[str, Any]:
    """Return the ``RecordConsumer`` options the ``kafka`` section sets, besides topics and group."""
    kafka = settings.kafka
    return {
        "client_id": kafka.client_id,
        "auto_offset_reset": kafka.auto_offset_reset,
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "max_poll_interval_ms": kafka.max_poll_interval_ms,
        "group_instance_id": kafka.group_instance_id or None,
        "retry_backoff_initial_ms": kafka.retry_backoff_initial_ms,
        "retry_backoff_max_ms": kafka.retry_backoff_max_ms,
        "commit_timeout_s": kafka.commit_timeout_s,
        "health_check_interval_s": kafka.health_check_interval_s,
        "metadata_timeout_s": kafka.metadata_timeout_s,
    }


def kafka_security(settings: Any) -> KafkaSecurity:
    """Build the TLS and SASL options of the ``kafka`` section."""
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


def bootstrap_of(settings: Any) -> str:
    """Return ``kafka.bootstrap_servers``, rejecting ``embedded``, which each process would start alone."""
    bootstrap = str(settings.kafka.bootstrap_servers)
    if bootstrap == "embedded":
        raise ConfigError(
            "kafka.bootstrap_servers is 'embedded', but scale-out instances must share one broker: "
            "start one with 'darkvec-stream broker' and set kafka.bootstrap_servers to its address"
        )
    return bootstrap
