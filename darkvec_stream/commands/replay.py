"""``darkvec-stream replay``: send capture files into a Kafka topic in event-time order.

Options left out fall back to the configuration (``kafka.*`` and ``input.*``).
The summary goes to stdout and the progress bar to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.errors import ConfigError
from darkvec_stream.kafka.broker import EmbeddedBroker
from darkvec_stream.kafka.replay import DEFAULT_BATCH_RECORDS, PARTITIONINGS, replay
from darkvec_stream.kafka.security import KafkaSecurity

logger = logging.getLogger(__name__)

FILE_FORMATS = ("record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn", "pcap")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="send capture files into a Kafka topic in event-time order",
        description="Read FILEs, merge their records by event time and produce them to a topic "
        "in the record-csv wire format, several records per message.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="capture files (gzip detected automatically)")
    parser.add_argument("--topic", default=None, help="topic to produce to (default: kafka.topic)")
    parser.add_argument(
        "--format", default=None, choices=FILE_FORMATS, help="decoder for the files (default: input.format)"
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", dest="decoder_options",
        help="decoder option, for example --option preset=marx-iptables (repeatable; "
        "default: input.decoder_options)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speedup", type=float, default=None, metavar="X",
        help="send at the original pace times X, e.g. 3600 replays an hour per second (default: as fast as possible)",
    )
    pace.add_argument(
        "--max-rate", type=float, default=None, metavar="N",
        help="send at most N records per second (default: as fast as possible)",
    )
    parser.add_argument(
        "--batch-records", type=int, default=DEFAULT_BATCH_RECORDS, metavar="N",
        help=f"records per Kafka message, newline-separated (default: {DEFAULT_BATCH_RECORDS})",
    )
    parser.add_argument(
        "--partitioning", default="single", choices=PARTITIONINGS,
        help="'single': every record to --partition, so topic order is event-time order (default); "
        "'source-hash': spread senders over all partitions by a hash of the source address; "
        "'service': each record to the partition of its service (services.mode domain or single), "
        "the input of 'darkvec-stream worker'",
    )
    parser.add_argument("--partition", type=int, default=0, help="partition used by --partitioning single (default: 0)")
    parser.add_argument(
        "--bootstrap-servers", default=None, metavar="HOST:PORT",
        help="Kafka brokers (default: kafka.bootstrap_servers); 'embedded' starts a throwaway "
        "broker that stops when replay ends, so it is only useful inside one process",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into a dict; reject a pair without ``=``."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"--option {pair!r} is invalid: use KEY=VALUE, for example preset=marx-iptables")
        options[key.strip()] = value.strip()
    return options


@contextlib.contextmanager
def resolved_bootstrap(bootstrap_servers: str) -> Iterator[str]:
    """Yield the bootstrap address, starting an embedded broker for ``embedded``."""
    if bootstrap_servers != "embedded":
        yield bootstrap_servers
        return
    logger.warning("replaying into an embedded broker: its data is lost when replay ends")
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


def _services(settings: Any) -> Any:
    from darkvec_stream.scaleout.settings import build_services

    return build_services(settings)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    kafka = settings.kafka
    security = KafkaSecurity(
        security_protocol=kafka.security_protocol,
        ssl_cafile=kafka.ssl_cafile,
        ssl_certfile=kafka.ssl_certfile,
        ssl_keyfile=kafka.ssl_keyfile,
        sasl_mechanism=kafka.sasl_mechanism,
        sasl_plain_username=kafka.sasl_plain_username,
        sasl_plain_password=kafka.sasl_plain_password,
    )
    decoder_options = parse_options(args.decoder_options) if args.decoder_options else dict(settings.input.decoder_options)
    with resolved_bootstrap(args.bootstrap_servers or kafka.bootstrap_servers) as bootstrap_servers:
        summary = replay(
            args.files,
            topic=args.topic or kafka.topic,
            bootstrap_servers=bootstrap_servers,
            format=args.format or settings.input.format,
            decoder_options=decoder_options,
            speedup=args.speedup,
            max_rate=args.max_rate,
            batch_records=args.batch_records,
            partitioning=args.partitioning,
            partition=args.partition,
            security=security,
            progress=not args.no_progress,
            services=_services(settings) if args.partitioning == "service" else None,
        )
    print(summary.render())
    return 0
