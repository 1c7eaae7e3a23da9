"""Simulated telescope runs with exact truth, and the truth views the quality benchmark scores against.

Writes (or reuses) one seeded simulation per parameter set and turns its
``senders.csv`` into evaluation classes and cluster truth. It trains and
scores nothing itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from darkvec_stream.labels.normalise import normalise_label
from darkvec_stream.simulate import (
    CampaignGroup,
    ContinuousGroup,
    SimulationConfig,
    Truth,
    load_truth,
    write_simulation,
)

logger = logging.getLogger(__name__)

# Kinds whose members act together; the other kinds (backscatter, noise,
# one-off) act alone and are their own cluster in the truth.
COORDINATED_KINDS = frozenset({"scanner", "bruteforce", "botnet", "worm"})
MIRAI_GROUP = "mirai"
WORM_GROUP = "docker-worm"


def simulation_config(days: float, scale: float, seed: int, prefix: str = "198.51.100.0/24",
                      stable: bool = False) -> SimulationConfig:
    """Return the simulator settings of one benchmark run.

    ``stable`` removes both simulated events (the worm and the port-set
    change), so every cluster alert of that run is a false alert.
    """
    config = SimulationConfig(days=days, scale=scale, seed=seed, prefix=prefix)
    if not stable:
        return config
    populations = []
    for population in config.populations:
        if isinstance(population, ContinuousGroup) and population.onset_day is None:
            continue
        if isinstance(population, CampaignGroup):
            subgroups = tuple(replace(sub, ports_after=(), change_day=None) for sub in population.subgroups)
            population = replace(population, subgroups=subgroups)
        populations.append(population)
    return replace(config, populations=tuple(populations))


def simulate(directory: Path, config: SimulationConfig) -> Truth:
    """Write the simulation into ``directory`` unless the same parameters are already there."""
    directory = Path(directory)
    marker = directory / "config.json"
    wanted = config.to_dict()
    if marker.is_file():
        written = json.loads(marker.read_text(encoding="utf-8"))
        # The written config has event days resolved, so compare the inputs
        # that identify a run rather than the whole document.
        if all(written.get(key) == wanted[key] for key in ("days", "scale", "seed", "prefix", "start")) and \
                len(written["populations"]) == len(wanted["populations"]):
            logger.info("reusing simulation in %s", directory)
            return load_truth(directory)
    write_simulation(config, directory, "record-csv")
    return load_truth(directory)


def true_class(truth: Truth, sender: str) -> str | None:
    """Return the evaluation class of a sender: its scanner organisation, ``mirai``, or None.

    Organisation names go through the label normaliser, so the class of an
    ``engin-umich`` sender is ``u_mich``, the name the label book gives it.
    """
    row = truth.senders.get(sender)
    if row is None:
        return None
    if row.kind == "scanner":
        return normalise_label(row.group)
    if row.group == MIRAI_GROUP:
        return MIRAI_GROUP
    return None


def evaluation_labels(truth: Truth, senders: list[str]) -> dict[str, str]:
    """Map each sender of ``senders`` that is a scanner or a Mirai-like bot to its true class."""
    labels = {}
    for sender in senders:
        label = true_class(truth, sender)
        if label is not None:
            labels[sender] = label
    return labels


def visible_labels(truth: Truth, senders: list[str]) -> dict[str, str]:
    """Labels the pipeline can see: the operator's partial list plus every Mirai-like bot.

    The Mirai fingerprint is exact in the simulator and every Mirai-like
    packet carries it, so each Mirai-like sender is visible.
    """
    labels = {}
    for sender in senders:
        listed = truth.labels.get(sender)
        if listed is not None:
            labels[sender] = normalise_label(listed)
        elif true_class(truth, sender) == MIRAI_GROUP:
            labels[sender] = MIRAI_GROUP
    return labels


def cluster_truth(truth: Truth, senders: list[str], level: str = "group") -> list[str]:
    """Return the true cluster of each sender: its group or sub-group when coordinated, else itself.

    A sender missing from the truth files (impossible for simulated input)
    also counts as its own cluster.
    """
    result = []
    for sender in senders:
        row = truth.senders.get(sender)
        if row is None or row.kind not in COORDINATED_KINDS:
            result.append("alone:" + sender)
        else:
            result.append(row.subgroup if level == "subgroup" else row.group)
    return result


def group_members(truth: Truth, group: str) -> frozenset[str]:
    """Return every sender of one true group."""
    return frozenset(ip for ip, row in truth.senders.items() if row.group == group)
