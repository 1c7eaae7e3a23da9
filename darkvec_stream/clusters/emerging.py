"""Carve groups of newly seen senders that share ports new to the telescope out of their clusters.

Word2Vec needs several windows before a new sender's vector leaves the
crowd of barely trained senders, so a worm's first senders land in a noise
cluster and only form their own cluster hours later. This step bridges
that gap with traffic: newcomers (first clustered within ``newcomer_windows``
runs) that hit ports the established senders did not carry become their own
cluster. It neither embeds nor tracks; state is saved as JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from darkvec_stream.clusters.clustering import NOISE, Clustering, centroids_of
from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

STATE_FILE = "emerging.json"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class EmergingGroup:
    """One carved group: its cluster label in the refined clustering and why it was carved.

    ``repeat_of_run`` is the clustering run in which a group was last carved
    on the same novel ports within ``repeat_runs`` runs (a later wave of the
    same outbreak), None for a first sighting.
    """

    label: int
    members: tuple[str, ...]
    novel_ports: tuple[int, ...]
    novel_port_share: float
    repeat_of_run: int | None = None


class EmergingGroups:
    """Split newcomers that share novel ports into their own clusters.

    A port is novel when it carries less than ``novel_port_max_share`` of
    the established senders' packets in an exponentially weighted history
    (weight ``history_alpha`` per run). Newcomers' packets stay out of that
    history until they are established, so an outbreak does not make its
    own ports look familiar. Newcomers joined by shared novel ports form a
    group; a group of at least ``min_group_size`` senders becomes a new
    cluster. Nothing is carved until the history covers
    ``min_history_runs`` runs.

    >>> groups = EmergingGroups()
    >>> groups.min_group_size, groups.newcomer_windows
    (5, 6)
    """

    def __init__(
        self,
        newcomer_windows: int = 6,
        min_group_size: int = 5,
        novel_port_max_share: float = 0.001,
        history_alpha: float = 1.0 / 24.0,
        min_history_runs: int = 12,
        repeat_runs: int = 24,
        enabled: bool = True,
    ) -> None:
        if repeat_runs < 0:
            raise ConfigError(f"emerging repeat_runs must be >= 0, got {repeat_runs}")
        if newcomer_windows < 1 or min_group_size < 2 or min_history_runs < 1:
            raise ConfigError("emerging newcomer_windows and min_history_runs must be at least 1 and "
                              f"min_group_size at least 2; got {newcomer_windows}, {min_history_runs}, "
                              f"{min_group_size}")
        for name, value in (("novel_port_max_share", novel_port_max_share), ("history_alpha", history_alpha)):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"emerging {name} must be in (0, 1], got {value}")
        self.newcomer_windows = newcomer_windows
        self.min_group_size = min_group_size
        self.novel_port_max_share = novel_port_max_share
        self.history_alpha = history_alpha
        self.min_history_runs = min_history_runs
        self.repeat_runs = repeat_runs
        self.enabled = enabled
        self._first_run: dict[str, int] = {}
        self._port_history: dict[int, float] = {}
        self._history_runs = 0
        self._runs = 0
        self._carved_ports: dict[int, int] = {}

    def is_newcomer(self, sender: str) -> bool:
        """Tell whether ``sender`` was first clustered within the last ``newcomer_windows`` runs."""
        first = self._first_run.get(sender)
        return first is not None and self._runs - first < self.newcomer_windows

    def update(self, clustering: Clustering, vectors: np.ndarray,
               window: ClosedWindow) -> tuple[Clustering, list[EmergingGroup]]:
        """Record this run's senders and traffic, and return the clustering with carved groups added."""
        self._runs += 1
        for sender in clustering.keys:
            self._first_run.setdefault(sender, self._runs)
        newcomers = [sender for sender in clustering.keys if self.is_newcomer(sender)]
        groups: list[list[str]] = []
        if self.enabled and self._history_runs >= self.min_history_runs:
            groups = self._groups(newcomers, window)
        result = self._carve(clustering, vectors, window, groups) if groups else (clustering, [])
        # The history learns after carving, so a group's evidence is judged
        # against the traffic before this window.
        self._learn_ports(clustering.keys, window)
        return result

    def forget(self, senders: Iterable[str]) -> None:
        """Drop expired senders so the state stays bounded by the live senders."""
        for sender in senders:
            self._first_run.pop(sender, None)

    def _novel_ports(self, activity: Mapping[int, int]) -> set[int]:
        total = sum(self._port_history.values())
        return {port for port in activity
                if total <= 0 or self._port_history.get(port, 0.0) / total < self.novel_port_max_share}

    def _groups(self, newcomers: list[str], window: ClosedWindow) -> list[list[str]]:
        # 1. Each newcomer's novel ports this window; keep ports that enough newcomers share,
        #    because a lone random port says nothing about coordination.
        novel: dict[str, set[int]] = {}
        port_senders: dict[int, set[str]] = {}
        for sender in newcomers:
            activity = window.activity.get(sender)
            if activity is None:
                continue
            ports = self._novel_ports(activity.dst_ports)
            novel[sender] = ports
            for port in ports:
                port_senders.setdefault(port, set()).add(sender)
        shared = {port for port, senders in port_senders.items() if len(senders) >= self.min_group_size}

        # 2. Join newcomers through shared novel ports (union-find over ports).
        parent = {port: port for port in shared}

        def root(port: int) -> int:
            while parent[port] != port:
                parent[port] = parent[parent[port]]
                port = parent[port]
            return port

        for sender, ports in novel.items():
            mine = sorted(ports & shared)
            for port in mine[1:]:
                parent[root(port)] = root(mine[0])
        members: dict[int, list[str]] = {}
        for sender in sorted(novel):
            mine = sorted(novel[sender] & shared)
            if mine:
                members.setdefault(root(mine[0]), []).append(sender)
        return sorted((group for group in members.values() if len(group) >= self.min_group_size),
                      key=lambda group: (-len(group), group[0]))

    def _learn_ports(self, senders: Iterable[str], window: ClosedWindow) -> None:
        # Only established senders teach the history: an outbreak's own
        # packets would otherwise make its ports familiar within a window.
        counts: dict[int, int] = {}
        for sender in senders:
            activity = window.activity.get(sender)
            if activity is None or self.is_newcomer(sender):
                continue
            for port, packets in activity.dst_ports.items():
                counts[int(port)] = counts.get(int(port), 0) + packets
        total = sum(counts.values())
        if total == 0:
            return
        alpha = self.history_alpha if self._port_history else 1.0
        blended = {port: (1.0 - alpha) * weight for port, weight in self._port_history.items()}
        for port, packets in counts.items():
            blended[port] = blended.get(port, 0.0) + alpha * packets / total
        # Weights that decayed below any useful share are dropped to bound the state.
        self._port_history = {port: weight for port, weight in blended.items() if weight >= 1e-6}
        self._history_runs += 1

    def _carve(self, clustering: Clustering, vectors: np.ndarray, window: ClosedWindow,
               groups: list[list[str]]) -> tuple[Clustering, list[EmergingGroup]]:
        labels = clustering.labels.copy()
        row_of = {sender: row for row, sender in enumerate(clustering.keys)}
        carved = []
        for offset, members in enumerate(groups):
            label = clustering.n_clusters + offset
            labels[[row_of[sender] for sender in members]] = label
            ports: dict[int, int] = {}
            for sender in members:
                for port, packets in window.activity[sender].dst_ports.items():
                    ports[int(port)] = ports.get(int(port), 0) + packets
            novel = self._novel_ports(ports)
            total = sum(ports.values())
            share = sum(ports[port] for port in novel) / total if total else 0.0
            earlier = [self._carved_ports.get(port, -self.repeat_runs - 1) for port in novel]
            recent = bool(earlier) and all(self._runs - run <= self.repeat_runs for run in earlier)
            repeat = min(earlier) if recent else None
            carved.append(EmergingGroup(label, tuple(members), tuple(sorted(novel)), share, repeat))
        for group in carved:
            for port in group.novel_ports:
                self._carved_ports[port] = self._runs
        # Ports carved long ago are forgotten to bound the state.
        self._carved_ports = {port: run for port, run in self._carved_ports.items()
                              if self._runs - run <= self.repeat_runs}
        # A parent left with no member drops out and the labels are renumbered
        # densely, because every label below n_clusters must have members.
        used = sorted({int(label) for label in labels.tolist() if label != NOISE})
        dense = {label: position for position, label in enumerate(used)}
        labels = np.array([dense.get(int(label), NOISE) for label in labels.tolist()], dtype=clustering.labels.dtype)
        carved = [replace(group, label=dense[group.label]) for group in carved]
        centroids = centroids_of(np.asarray(vectors, dtype=np.float32), labels, len(used))
        logger.info("window %s: carved %s emerging groups of newcomers (%s senders)", window.index,
                    len(groups), sum(len(group) for group in groups))
        return replace(clustering, labels=labels, centroids=centroids), carved

    def save(self, directory: Path) -> None:
        """Write first runs, port history and counters as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {
            "version": STATE_VERSION,
            "runs": self._runs,
            "history_runs": self._history_runs,
            "first_run": dict(sorted(self._first_run.items())),
            "port_history": {str(port): weight for port, weight in sorted(self._port_history.items())},
            "carved_ports": {str(port): run for port, run in sorted(self._carved_ports.items())},
        }
        (directory / STATE_FILE).write_text(json.dumps(document), encoding="utf-8")

    def load(self, directory: Path) -> None:
        """Restore the state written by ``save``; raises ``StateError`` when it is missing or malformed."""
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != STATE_VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {STATE_VERSION}")
            runs = int(document["runs"])
            history_runs = int(document["history_runs"])
            first_run = {str(sender): int(run) for sender, run in document["first_run"].items()}
            port_history = {int(port): float(weight) for port, weight in document["port_history"].items()}
            carved_ports = {int(port): int(run) for port, run in document["carved_ports"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(f"cannot read emerging-group state {path}: {error!r}") from error
        self._runs, self._history_runs = runs, history_runs
        self._first_run, self._port_history = first_run, port_history
        self._carved_ports = carved_ports
