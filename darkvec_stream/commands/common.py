"""Helpers shared by subcommands: loading settings from the global options."""

from __future__ import annotations

import argparse
import logging

from darkvec_stream.config import Settings, load_settings, masked_dict
from darkvec_stream.logs import configure

logger = logging.getLogger(__name__)


def settings_from_args(args: argparse.Namespace, extra_overrides: list[str] | None = None) -> Settings:
    """Load settings from ``--config``, the environment and ``--set``, then apply logging settings.

    ``extra_overrides`` come from a subcommand's own options and win over
    ``--set``, because they are the more specific request.
    """
    overrides = list(getattr(args, "overrides", []) or []) + list(extra_overrides or [])
    settings = load_settings(getattr(args, "config", None), overrides=overrides)
    configure(
        getattr(args, "log_level", None) or settings.logging.level,
        getattr(args, "log_format", None) or settings.logging.format,
    )
    return settings


def log_effective_settings(settings: Settings) -> None:
    """Log the effective configuration once, with secrets masked."""
    logger.info("effective configuration: %s", masked_dict(settings))
