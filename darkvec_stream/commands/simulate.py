"""``darkvec-stream simulate``: write seeded telescope traffic and its ground truth.

Options map one to one onto ``SimulationConfig``; ``--params`` loads a full
parameter file (for example a previous run's ``config.json``) that the other
options then override. Producing into Kafka is left to ``replay``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.simulate.config import (
    DEFAULT_PREFIX,
    DEFAULT_START,
    CampaignGroup,
    ContinuousGroup,
    SimulationConfig,
)
from darkvec_stream.simulate.run import write_simulation
from darkvec_stream.simulate.writers import OUTPUT_FORMATS

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate telescope traffic with exact ground truth (seeded, reproducible)",
        description="Write the traffic a darknet prefix receives into --out, in any input format, "
                    "with truth files that give each sender's group and when worms appear or scanners "
                    "change ports, so labels, clusters and alerts can be scored. The same options and "
                    "seed give identical files; no real capture is read.",
    )
    parser.add_argument("--days", type=float, default=None, help="length of the run in days (default: 1)")
    parser.add_argument("--prefix", default=None,
                        help=f"telescope IPv4 prefix, /16 to /28 (default: {DEFAULT_PREFIX})")
    parser.add_argument("--scale", type=float, default=None,
                        help="factor applied to every population's sender count (default: 1, the March 2021 /24 level)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives identical files (default: 0)")
    parser.add_argument("--out", required=True, type=Path, help="output directory for traffic and truth files (created if missing)")
    parser.add_argument("--format", default="record-csv", choices=OUTPUT_FORMATS, dest="format_name",
                        help="traffic file format (default: record-csv)")
    parser.add_argument("--start", default=None, help=f"ISO 8601 start time, UTC (default: {DEFAULT_START})")
    parser.add_argument("--gzip", action="store_true", help="gzip the traffic files (names end in .gz)")
    parser.add_argument("--split", default="day", choices=("day", "none"),
                        help="one traffic file per UTC day, or one file for the run (default: day)")
    parser.add_argument("--worm-onset-day", type=float, default=None,
                        help="days from the start when worms appear (default: 60%% of the run)")
    parser.add_argument("--port-change-day", type=float, default=None,
                        help="days from the start when scanners change port sets (default: 40%% of the run)")
    parser.add_argument("--params", type=Path, default=None,
                        help="JSON or YAML file of SimulationConfig fields, e.g. a previous config.json; "
                             "the other options override it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    result = write_simulation(config, args.out, args.format_name, compress=args.gzip, split=args.split)
    print(
        f"wrote {result.records} records from {result.senders} senders "
        f"({result.labelled_senders} labelled) to {result.directory}",
        file=sys.stdout,
    )
    return 0


def build_config(args: argparse.Namespace) -> SimulationConfig:
    """Build the run's configuration: the ``--params`` file, then the options given."""
    config = load_params(args.params) if args.params else SimulationConfig()
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("days", "prefix", "scale", "seed", "start")
        if getattr(args, name) is not None
    }
    config = replace(config, **overrides)
    if args.worm_onset_day is not None or args.port_change_day is not None:
        config = replace(config, populations=tuple(
            _with_event_days(population, args.worm_onset_day, args.port_change_day)
            for population in config.populations
        ))
    return config


def _with_event_days(population: Any, onset_day: float | None, change_day: float | None) -> Any:
    if onset_day is not None and isinstance(population, ContinuousGroup) and population.kind == "worm":
        return replace(population, onset_day=onset_day)
    if change_day is not None and isinstance(population, CampaignGroup):
        return replace(population, subgroups=tuple(
            replace(sub, change_day=change_day) if sub.ports_after else sub for sub in population.subgroups
        ))
    return population


def load_params(path: Path) -> SimulationConfig:
    """Load ``SimulationConfig`` fields from a JSON or YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read simulation parameters {path}: {error.strerror}") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"invalid simulation parameters in {path}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"invalid simulation parameters in {path}: expected a mapping of settings")
    return SimulationConfig.from_dict(data)
