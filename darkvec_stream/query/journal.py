"""The cluster stage's decisions, kept for analysts: clusters, transitions and alerts.

``ClusterJournal`` keeps the last clustering run (each sender's global
cluster id and silhouette, each cluster's profile), a bounded list of
transitions per cluster, and a bounded list of recent alerts. The query API
and the report read it; it is saved in every checkpoint. It does not
cluster, track or raise alerts itself.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from darkvec_stream.alerts.formats.jsonl import alert_to_dict
from darkvec_stream.alerts.model import Alert
from darkvec_stream.clusters.clustering import NOISE
from darkvec_stream.clusters.monitor import ClusterUpdate
from darkvec_stream.errors import ConfigError, StateError

STATE_FILE = "journal.json"
FORMAT_VERSION = 1


class ClusterJournal:
    """The last clustering run, transitions per cluster and recent alerts, all bounded."""

    def __init__(self, max_transitions: int = 100, max_alerts: int = 10000) -> None:
        if max_transitions < 1 or max_alerts < 1:
            raise ConfigError(
                f"journal bounds {max_transitions} transitions and {max_alerts} alerts are invalid: use 1 or more"
            )
        self.max_transitions = max_transitions
        self.max_alerts = max_alerts
        self.window_index: int | None = None
        self.sender_cluster: dict[str, tuple[str, float | None]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.transitions: dict[str, deque[dict[str, Any]]] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)

    # -- updates -------------------------------------------------------------

    def record(self, update: ClusterUpdate | None, alerts: Sequence[Alert]) -> None:
        """Keep one window's clustering run (if any) and the alerts it emitted."""
        if update is not None:
            self._record_run(update)
        for alert in alerts:
            self.alerts.append(alert_to_dict(alert))

    def _record_run(self, update: ClusterUpdate) -> None:
        clustering, ids = update.clustering, update.tracking.ids
        self.window_index = update.window_index
        self.sender_cluster = {}
        for sender, label, silhouette in zip(clustering.keys, clustering.labels, clustering.silhouettes):
            if int(label) == NOISE or int(label) not in ids:
                continue
            value = float(silhouette)
            self.sender_cluster[sender] = (ids[int(label)], None if math.isnan(value) else round(value, 6))
        self.profiles = {cluster_id: profile.to_json() for cluster_id, profile in update.profiles.items()}
        for transition in update.tracking.transitions:
            entries = self.transitions.setdefault(transition.cluster_id, deque(maxlen=self.max_transitions))
            entries.append(_transition_json(asdict(transition)))

    def forget(self, senders: Iterable[str]) -> None:
        """Drop senders that left the model from the last run's membership."""
        for sender in senders:
            self.sender_cluster.pop(sender, None)

    # -- views ---------------------------------------------------------------

    def members(self, cluster_id: str) -> list[str]:
        """Return the senders of one cluster in the last run, sorted."""
        return sorted(sender for sender, (cid, _) in self.sender_cluster.items() if cid == cluster_id)

    def cluster_alerts(self, cluster_id: str) -> list[dict[str, Any]]:
        return [alert for alert in self.alerts if alert.get("cluster_id") == cluster_id]

    # -- state ---------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": FORMAT_VERSION,
            "window_index": self.window_index,
            "sender_cluster": [[sender, cid, silhouette] for sender, (cid, silhouette) in self.sender_cluster.items()],
            "profiles": self.profiles,
            "transitions": {cid: list(entries) for cid, entries in self.transitions.items()},
            "alerts": list(self.alerts),
        }
        (directory / STATE_FILE).write_text(json.dumps(document, separators=(",", ":")))

    def load(self, directory: Path) -> None:
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text())
            if document.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unsupported format_version {document.get('format_version')!r}")
            window_index = document["window_index"]
            sender_cluster = {str(s): (str(c), _optional_float(v)) for s, c, v in document["sender_cluster"]}
            profiles = dict(document["profiles"])
            transitions = {
                str(cid): deque(entries, maxlen=self.max_transitions)
                for cid, entries in document["transitions"].items()
            }
            alerts = deque(document["alerts"], maxlen=self.max_alerts)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"cluster journal {path} is missing or corrupt: {error}") from error
        self.window_index = None if window_index is None else int(window_index)
        self.sender_cluster, self.profiles = sender_cluster, profiles
        self.transitions, self.alerts = transitions, alerts


def _transition_json(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: list(item) if isinstance(item, tuple) else item for key, item in value.items()}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
