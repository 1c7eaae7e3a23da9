"""The ``darkvec-stream`` command line: global options and subcommand dispatch.

Each subcommand lives in ``darkvec_stream.commands.<name>`` and returns an
exit code. A ``DarkvecError`` becomes one line on stderr and exit code 2 for
configuration errors or 1 for the rest; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from darkvec_stream import __version__
from darkvec_stream.commands import COMMANDS
from darkvec_stream.errors import ConfigError, DarkvecError
from darkvec_stream.logs import configure

EXIT_CONFIG_ERROR = 2
EXIT_RUNTIME_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkvec-stream",
        description="Streaming DarkVec: find darknet senders that act together, live.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", default=None,
        help="YAML configuration file (default: built-in defaults; see config.yaml)",
    )
    parser.add_argument(
        "--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="overrides",
        help="override one setting, for example --set windows.window_s=600 (repeatable)",
    )
    parser.add_argument(
        "--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level (default: logging.level from the configuration, INFO)",
    )
    parser.add_argument(
        "--log-format", default=None, choices=("text", "json"),
        help="log line format (default: logging.format from the configuration, text)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"darkvec_stream.commands.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # A command whose module is absent from this installation is left
            # out of the parser; any other missing import is a real error.
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG_ERROR
    configure(args.log_level or "INFO", args.log_format or "text")
    try:
        return int(args.func(args) or 0)
    except ConfigError as error:
        print(f"darkvec-stream: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except DarkvecError as error:
        print(f"darkvec-stream: error: {error}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    except KeyboardInterrupt:
        print("darkvec-stream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
