"""``darkvec-stream route``: re-key a raw record topic by service for the window workers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from darkvec_stream.commands.common import log_effective_settings, settings_from_args

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from darkvec_stream.scaleout.settings import add_scaleout_options

    parser = subparsers.add_parser(
        "route",
        help="scale-out: copy records from the raw topic into the by-service topic",
        description="Join the router consumer group on the raw topic (kafka.topic, any partitioning and "
        "format), and send each record to the partition of its service in the by-service topic. Commits "
        "after the broker acknowledged; workers drop the copies a restart sends again.",
    )
    add_scaleout_options(parser, group="router_group_id")
    parser.add_argument("--raw-topic", default=None, metavar="TOPIC",
                        help="topic the exporters write to (default: kafka.topic)")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="directory of this router's dead-letter file (default: output.directory)")
    parser.add_argument("--exit-when-idle", metavar="SECONDS", type=float, default=None,
                        help="stop after this many seconds without a record once caught up (finite inputs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darkvec_stream.commands.worker import _dead_letter
    from darkvec_stream.metrics import Health
    from darkvec_stream.scaleout.lifecycle import StopRequest, metrics_server
    from darkvec_stream.scaleout.router import Router
    from darkvec_stream.scaleout.settings import (
        bootstrap_of, build_services, consumer_options, kafka_security, scaleout_from_args,
    )

    extra = [f"output.directory={args.output}"] if args.output else []
    settings = settings_from_args(args, extra)
    scaleout = scaleout_from_args(args, settings, router_group_id=args.group_id)
    bootstrap = bootstrap_of(settings)
    services = build_services(settings)
    log_effective_settings(settings)
    security = kafka_security(settings)
    router = Router(
        bootstrap,
        raw_topic=args.raw_topic or settings.kafka.topic,
        records_topic=scaleout.records_topic,
        group_id=scaleout.router_group_id,
        services=services,
        dead_letter=_dead_letter(settings, Path(settings.output.directory), bootstrap, security),
        input_format=settings.kafka.format,
        decoder_options=dict(settings.kafka.decoder_options),
        max_message_bytes=scaleout.max_message_bytes,
        poll_timeout_ms=settings.kafka.poll_timeout_ms,
        max_poll_records=settings.kafka.max_poll_records,
        consumer_options=consumer_options(settings),
        security=security,
    )
    port = args.metrics_port if args.metrics_port is not None else (
        settings.metrics.port if settings.metrics.enabled else None)
    stop = StopRequest()
    with stop.installed(), metrics_server(router.metrics.registry, Health(ready=True), settings.metrics.host, port):
        summary = router.run(stop, exit_when_idle_s=args.exit_when_idle)
    print(f"messages read {summary.messages_read}, records routed {summary.records_routed}, "
          f"rejected {summary.records_rejected}; messages sent {summary.messages_sent}")
    return 0
