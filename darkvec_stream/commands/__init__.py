"""One module per ``darkvec-stream`` subcommand.

Each module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code.
"""

COMMANDS = (
    "run",
    "replay",
    "broker",
    "simulate",
    "evaluate",
    "export",
    "clusters",
    "query",
    "config",
    "demo",
    "report",
    "route",
    "worker",
    "trainer",
)
