"""``darkvec-stream config``: validate a configuration file or show the effective settings."""

from __future__ import annotations

import argparse
import json
import sys

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.config import check_file, masked_dict
from darkvec_stream.config.document import render_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="check or show configuration")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate a YAML configuration file; exit 0 if valid, 2 if not")
    check.add_argument("file", metavar="FILE", help="configuration file to validate")
    check.set_defaults(func=_check)

    show = actions.add_parser(
        "show", help="print the effective settings (file, environment, --set) as JSON, secrets masked"
    )
    show.set_defaults(func=_show)

    defaults = actions.add_parser("defaults", help="print the default configuration as commented YAML")
    defaults.set_defaults(func=_defaults)


def _check(args: argparse.Namespace) -> int:
    check_file(args.file)
    print(f"{args.file}: valid")
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    json.dump(masked_dict(settings), sys.stdout, indent=2, sort_keys=False)
    print()
    return 0


def _defaults(args: argparse.Namespace) -> int:
    sys.stdout.write(render_config())
    return 0
