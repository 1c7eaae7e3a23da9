"""``darkvec-stream worker``: window whole services from the by-service topic for the trainer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from darkvec_stream.commands.common import log_effective_settings, settings_from_args

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from darkvec_stream.scaleout.settings import add_scaleout_options

    parser = subparsers.add_parser(
        "worker",
        help="scale-out: window owned partitions of the by-service topic and publish window parts",
        description="Join the worker consumer group on the by-service topic, window each owned partition "
        "with its own watermark, and send each closed window's sentences and sender activity to the "
        "sentences topic for 'darkvec-stream trainer'. Needs services.mode domain (or single).",
    )
    add_scaleout_options(parser, group="worker_group_id")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="directory of this worker's dead-letter file (default: output.directory)")
    parser.add_argument("--exit-when-idle", metavar="SECONDS", type=float, default=None,
                        help="stop after this many seconds without a record once caught up (finite inputs)")
    parser.add_argument("--flush-at-exit", action="store_true",
                        help="close every open window and mark the partitions ended before stopping "
                             "(finite inputs)")
    parser.set_defaults(func=run)


def _dead_letter(settings: Any, output_dir: Path, bootstrap: str, security: Any) -> Any:
    from darkvec_stream.ingest.deadletter import JsonlDeadLetter, KafkaDeadLetter

    if settings.deadletter.sink == "kafka":
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, **security.client_options())
        return KafkaDeadLetter(producer, settings.kafka.deadletter_topic, max_buffered=settings.deadletter.buffer_max)
    output_dir.mkdir(parents=True, exist_ok=True)
    return JsonlDeadLetter(output_dir / settings.deadletter.path, max_buffered=settings.deadletter.buffer_max)


def run(args: argparse.Namespace) -> int:
    from darkvec_stream.scaleout.lifecycle import StopRequest, metrics_server
    from darkvec_stream.scaleout.settings import (
        bootstrap_of, build_services, consumer_options, kafka_security, scaleout_from_args,
    )
    from darkvec_stream.scaleout.worker import WindowWorker
    from darkvec_stream.metrics import Health

    extra = [f"output.directory={args.output}"] if args.output else []
    settings = settings_from_args(args, extra)
    scaleout = scaleout_from_args(args, settings, worker_group_id=args.group_id)
    bootstrap = bootstrap_of(settings)
    build_services(settings)
    log_effective_settings(settings)
    security = kafka_security(settings)
    worker = WindowWorker(
        bootstrap,
        records_topic=scaleout.records_topic,
        sentences_topic=scaleout.sentences_topic,
        group_id=scaleout.worker_group_id,
        services=lambda: build_services(settings),
        dead_letter=_dead_letter(settings, Path(settings.output.directory), bootstrap, security),
        window_s=settings.windows.window_s,
        lateness_s=settings.windows.lateness_s,
        max_future_s=settings.windows.max_future_s,
        max_message_bytes=scaleout.max_message_bytes,
        poll_timeout_ms=settings.kafka.poll_timeout_ms,
        max_poll_records=settings.kafka.max_poll_records,
        consumer_options=consumer_options(settings),
        security=security,
    )
    port = args.metrics_port if args.metrics_port is not None else (
        settings.metrics.port if settings.metrics.enabled else None)
    health = Health(ready=True, stale_after_s=2.0 * settings.windows.window_s)
    stop = StopRequest()
    with stop.installed(), metrics_server(worker.metrics.registry, health, settings.metrics.host, port):
        summary = worker.run(stop, exit_when_idle_s=args.exit_when_idle, flush_at_exit=args.flush_at_exit)
    print(f"records read {summary.records_read}, rejected {summary.records_rejected}, "
          f"duplicates dropped {summary.records_duplicate}; window parts sent {summary.windows_emitted} "
          f"in {summary.messages_sent} messages")
    return 0
