"""Subcommand help: every command describes itself and every option names its default."""

from __future__ import annotations

import argparse

import pytest

from darkvec_stream.cli import build_parser
from darkvec_stream.commands.clusters import clusterer_from_args
from darkvec_stream.commands.common import settings_from_args

COMMANDS = ("broker", "simulate", "evaluate", "clusters", "replay")


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("the command line has no subcommands")


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_description(name: str) -> None:
    description = subparser(name).description

    assert description is not None
    assert len(description.split()) >= 12


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name: str) -> None:
    for action in subparser(name)._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_evaluate_weighting_default_is_configuration() -> None:
    weighting = next(action for action in subparser("evaluate")._actions if action.dest == "weighting")

    assert weighting.help is not None
    assert "knn.weighting from the configuration" in weighting.help


def test_clusters_options_name_configuration() -> None:
    actions = {action.dest: action for action in subparser("clusters")._actions}

    for dest in ("method", "k", "resolution", "min_similarity", "min_cluster_size", "seed"):
        assert actions[dest].default is None
        assert f"clusters.{dest} from the configuration" in (actions[dest].help or "")


def clusterer_for(argv: list[str]):  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(argv)
    return clusterer_from_args(args, settings_from_args(args))


def test_clusters_seed_defaults_to_configuration() -> None:
    base = ["clusters", "--vectors", "v.csv", "--out", "out"]

    assert clusterer_for(base).seed == 15
    assert clusterer_for(["--set", "clusters.seed=3", *base]).seed == 3
    assert clusterer_for([*base, "--seed", "0"]).seed == 0


def test_clusters_options_override_configuration() -> None:
    base = ["--set", "clusters.k=12", "--set", "clusters.resolution=0.7", "clusters", "--vectors", "v.csv",
            "--out", "out"]

    from_configuration = clusterer_for(base)
    from_options = clusterer_for([*base, "--k", "4", "--resolution", "0.3", "--min-cluster-size", "2"])

    assert (from_configuration.k, from_configuration.resolution) == (12, 0.7)
    assert (from_options.k, from_options.resolution, from_options.min_cluster_size) == (4, 0.3, 2)
