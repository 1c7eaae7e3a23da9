"""``darkvec-stream run``: the daemon, on the configured Kafka topic or on files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from typing import TYPE_CHECKING

from darkvec_stream.commands.common import log_effective_settings, settings_from_args

if TYPE_CHECKING:
    from darkvec_stream.daemon import RunSummary

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the pipeline on the Kafka topic (default) or on files",
        description="Consume records, close event-time windows, update the model, label and "
        "cluster senders, and raise alerts. Stops cleanly on SIGTERM or Ctrl-C.",
    )
    parser.add_argument(
        "--input", nargs="+", metavar="FILE", default=None,
        help="read these files instead of Kafka (a backfill); every window is closed at the end",
    )
    parser.add_argument("--format", default=None, help="decoder for --input files (default: input.format)")
    parser.add_argument(
        "--preset", default=None,
        help="decoder preset for --input files, for example marx-iptables for the csv format",
    )
    parser.add_argument(
        "--output", metavar="DIR", default=None,
        help="directory for alerts, dead letters and checkpoints (default: output.directory)",
    )
    parser.add_argument(
        "--dump-sentences", metavar="DIR", type=Path, default=None,
        help="also write each closed window's sentences to one text file per window in DIR",
    )
    parser.add_argument(
        "--exit-when-idle", metavar="SECONDS", type=float, default=None,
        help="Kafka only: stop after this many seconds without a record (for finite replays)",
    )
    parser.add_argument(
        "--flush-at-exit", action="store_true",
        help="Kafka only: close every open window before stopping (for finite replays)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    extra = []
    if args.output:
        extra.append(f"output.directory={args.output}")
    if args.format:
        extra.append(f"input.format={args.format}")
    if args.preset:
        extra.append("input.decoder_options={preset: %s}" % args.preset)
    settings = settings_from_args(args, extra)
    log_effective_settings(settings)
    # Imported here so that --help and configuration errors return at once,
    # without loading gensim, faiss and river.
    from darkvec_stream.daemon import Daemon

    daemon = Daemon(settings, dump_sentences=args.dump_sentences)
    if args.input:
        summary = daemon.run_files(args.input)
    else:
        summary = daemon.run_kafka(exit_when_idle_s=args.exit_when_idle, flush_at_exit=args.flush_at_exit)
    print(format_summary(summary, Path(settings.output.directory)))
    return 0


def format_summary(summary: "RunSummary", output_dir: Path) -> str:
    lines = [
        f"records read {summary.records_read}, accepted {summary.records_accepted}, "
        f"rejected {summary.records_rejected}; of the accepted, {summary.records_late} arrived after the "
        "watermark and went to the dead-letter output as late",
        f"windows closed {len(summary.windows)}, checkpoints written {summary.checkpoints}",
    ]
    if summary.restored_from:
        lines.append(f"restored from {summary.restored_from}")
    alerts = sum(len(result.alerts) for result in summary.windows)
    lines.append(f"alerts emitted {alerts}; output directory {output_dir}")
    return "\n".join(lines)
