"""``darkvec-stream report``: write the self-contained HTML analyst report of a saved state.

It loads the daemon's newest verified checkpoint read-only, builds the
cluster inspection table, the per-cluster activity rasters and port heat
maps, the embedding map, the label evaluation and the alert timeline, and
writes ``report.html`` and ``report.json`` into ``--out``. It changes no
state and needs no running daemon.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.errors import InputError

logger = logging.getLogger(__name__)

MARKER = ".darkvec-report"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report with cluster tables and DarkVec inspection plots",
        description="Load the newest verified checkpoint from --state and write report.html (one file, "
        "images embedded, viewable offline) and report.json (its tables) into --out.",
    )
    parser.add_argument("--state", type=Path, required=True, metavar="DIR",
                        help="the daemon's output directory, its checkpoints directory, or one checkpoint")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory for report.html and report.json; it must be empty or hold an earlier report")
    parser.add_argument("--clusters", type=int, default=20, metavar="N",
                        help="clusters that get plots, largest first; the table lists all (default: 20)")
    parser.add_argument("--senders-per-cluster", type=int, default=200, metavar="M",
                        help="senders drawn per cluster plot, a deterministic sample (default: 200)")
    parser.add_argument("--ports-per-cluster", type=int, default=20, metavar="PORTS",
                        help="busiest ports shown in each port heat map (default: 20)")
    parser.add_argument("--map", choices=("pca", "tsne"), default="pca", dest="map_method",
                        help="projection of the embedding map; tsne is slower (default: pca)")
    parser.add_argument("--map-senders", type=int, default=3000, metavar="SENDERS",
                        help="senders projected on the embedding map, a deterministic sample (default: 3000)")
    parser.add_argument("--max-unknown", type=int, default=5000, metavar="SENDERS",
                        help="unlabelled senders sampled for the evaluation with an 'unknown' class (default: 5000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every sample and of t-SNE (default: 0)")
    parser.add_argument("--title", default="darkvec-stream analyst report", help="page title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # Imported here so that --help and option errors return without loading
    # gensim, faiss and matplotlib.
    from darkvec_stream.query.state import AnalystState
    from darkvec_stream.report import ReportOptions, build_report, write_report
    from darkvec_stream.stages import build_labeller

    options = ReportOptions(
        title=args.title,
        clusters=args.clusters,
        senders_per_cluster=args.senders_per_cluster,
        ports_per_cluster=args.ports_per_cluster,
        map_senders=args.map_senders,
        map_method=args.map_method,
        evaluation_max_unknown=args.max_unknown,
        seed=args.seed,
    )
    check_output(args.out)
    started = time.monotonic()
    state = AnalystState.from_checkpoint(settings, args.state)
    content = build_report(state, build_labeller(settings), options)
    out = prepare_output(args.out)
    html_path, json_path = write_report(content, out)
    logger.info("report of %s written to %s in %.1f s", state.checkpoint, out, time.monotonic() - started)
    print(f"report: {html_path.resolve()}")
    print(f"tables: {json_path.resolve()}")
    print(f"{len(content.rows)} clusters ({len(content.cluster_plots)} plotted), "
          f"{sum(content.alert_counts['by_type'].values())} alerts, from {state.checkpoint}")
    return 0


def check_output(path: Path) -> None:
    """Reject an output path that is a file, or a directory holding files that no report wrote."""
    if path.exists() and not path.is_dir():
        raise InputError(f"report output {path} is a file, not a directory: choose a directory with --out")
    if path.exists() and any(path.iterdir()) and not (path / MARKER).exists():
        raise InputError(
            f"report output directory {path} is not empty and contains no earlier report; "
            "choose an empty or new directory with --out"
        )


def prepare_output(path: Path) -> Path:
    """Create the checked output directory and mark it as a report's, so later runs may replace the report."""
    check_output(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).write_text("written by darkvec-stream report; report.html and report.json are replaced "
                                   "on the next report run\n")
    except OSError as error:
        raise InputError(f"cannot create the report output directory {path}: {error}") from error
    return path
