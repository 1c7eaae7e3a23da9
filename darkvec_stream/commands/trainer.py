"""``darkvec-stream trainer``: assemble windows from the workers' parts and run the model on them."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from darkvec_stream.commands.common import log_effective_settings, settings_from_args

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from darkvec_stream.scaleout.settings import DEFAULT_IDLE_TIMEOUT_S, add_scaleout_options

    parser = subparsers.add_parser(
        "trainer",
        help="scale-out: merge window parts from the workers and update the model, labels and clusters",
        description="Read the sentences topic, assemble each window once every partition of the "
        "by-service topic is closed through it, and run the pipeline (model, index, labels, clusters, "
        "alerts) with a checkpoint after each window. Run exactly one trainer per deployment.",
    )
    add_scaleout_options(parser, group="trainer_group_id")
    parser.add_argument("--idle-timeout", metavar="SECONDS", type=float, default=None,
                        help="wall-clock seconds a window waits for a silent partition before treating it as "
                             f"empty; keep it above a worker failover (default: scaleout.idle_timeout_s, "
                             f"{DEFAULT_IDLE_TIMEOUT_S:g})")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="directory for alerts, dead letters and checkpoints (default: output.directory)")
    parser.add_argument("--dump-sentences", metavar="DIR", type=Path, default=None,
                        help="also write each assembled window's sentences to one text file per window in DIR")
    parser.add_argument("--exit-at-end", action="store_true",
                        help="stop once every partition reported the end of a finite input and every "
                             "window is processed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darkvec_stream.scaleout.lifecycle import StopRequest
    from darkvec_stream.scaleout.settings import bootstrap_of, build_services, scaleout_from_args
    from darkvec_stream.scaleout.trainer import Trainer

    extra = [f"output.directory={args.output}"] if args.output else []
    settings = settings_from_args(args, extra)
    scaleout = scaleout_from_args(args, settings, trainer_group_id=args.group_id, idle_timeout_s=args.idle_timeout)
    bootstrap_of(settings)
    build_services(settings)
    log_effective_settings(settings)
    trainer = Trainer(settings, scaleout, dump_sentences=args.dump_sentences)
    stop = StopRequest()
    with stop.installed():
        summary = trainer.run(stop, exit_at_end=args.exit_at_end, metrics_port=args.metrics_port)
    alerts = sum(len(result.alerts) for result in summary.windows)
    print(f"messages read {summary.messages_read}, rejected {summary.messages_rejected}; windows assembled "
          f"{len(summary.windows)}, idle partitions skipped {summary.idle_partitions}, checkpoints "
          f"{summary.checkpoints}; alerts emitted {alerts}; output directory {settings.output.directory}")
    return 0
