"""Typed, validated, read-only settings for every stage."""

from darkvec_stream.config.loader import (
    ENV_PREFIX,
    check_file,
    describe,
    load_settings,
    masked_dict,
)
from darkvec_stream.config.schema import Settings

__all__ = ["ENV_PREFIX", "Settings", "check_file", "describe", "load_settings", "masked_dict"]
