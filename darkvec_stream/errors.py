"""Exception hierarchy shared by every stage.

The command line turns any ``DarkvecError`` into one line on stderr and a
non-zero exit code. Anything else is a bug and keeps its traceback.
"""


class DarkvecError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(DarkvecError):
    """A setting is missing, malformed or out of range."""


class InputError(DarkvecError):
    """An input file, topic or argument cannot be used as given."""


class StateError(DarkvecError):
    """Saved state (a checkpoint or model file) is missing, corrupt or foreign."""
