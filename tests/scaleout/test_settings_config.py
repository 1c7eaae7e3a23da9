"""The scale-out commands take topics and groups from the ``scaleout`` section, options first."""

from __future__ import annotations

import argparse

import pytest

from darkvec_stream.config import load_settings
from darkvec_stream.errors import ConfigError
from darkvec_stream.scaleout.settings import add_scaleout_options, scaleout_from_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_scaleout_options(parser, group="worker_group_id")
    return parser.parse_args(argv)


def test_configuration_fills_what_the_options_leave_out() -> None:
    settings = load_settings(None, overrides=["scaleout.records_topic=t.by-service",
                                              "scaleout.worker_group_id=w", "scaleout.idle_timeout_s=30"])
    args = parse()
    chosen = scaleout_from_args(args, settings, worker_group_id=args.group_id)
    assert (chosen.records_topic, chosen.worker_group_id, chosen.idle_timeout_s) == ("t.by-service", "w", 30.0)
    assert chosen.sentences_topic == "darkvec.sentences"


def test_options_override_the_configuration() -> None:
    settings = load_settings(None, overrides=["scaleout.records_topic=t.by-service"])
    args = parse("--records-topic", "cli.topic", "--group-id", "g2", "--max-message-bytes", "20000")
    chosen = scaleout_from_args(args, settings, worker_group_id=args.group_id)
    assert (chosen.records_topic, chosen.worker_group_id, chosen.max_message_bytes) == ("cli.topic", "g2", 20000)


def test_same_topic_twice_is_refused() -> None:
    settings = load_settings(None, overrides=["scaleout.sentences_topic=darkvec.records.by-service"])
    with pytest.raises(ConfigError, match="use two topics"):
        scaleout_from_args(parse(), settings)
