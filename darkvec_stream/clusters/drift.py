"""Detect drift of tracked clusters and label changes of senders, window by window.

Per tracked cluster it keeps four series (log size, centroid shift, port-set
Jaccard against the cluster's history, share of the main label), feeds them
to river ADWIN and Page-Hinkley detectors, and applies two explainable
rules (port set changed, size burst) that are more reliable on short series.
Per sender it notices confident label changes. It does not cluster, track
ids or build alerts; state is saved as JSON and detectors are rebuilt by
replaying the saved series.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

import numpy as np
from river.drift import ADWIN, PageHinkley

from darkvec_stream.errors import ConfigError, StateError

logger = logging.getLogger(__name__)

SIZE = "log_size"
CENTROID_SHIFT = "centroid_shift"
PORT_JACCARD = "port_jaccard"
MAIN_LABEL_SHARE = "main_label_share"
SERIES = (SIZE, CENTROID_SHIFT, PORT_JACCARD, MAIN_LABEL_SHARE)

PORT_SET_CHANGED = "port_set_changed"
SIZE_BURST = "size_burst"
DETECTOR = "detector"

# Page-Hinkley thresholds per series, calibrated by ``calibrate_page_hinkley``
# on 233 stable synthetic clusters over 48 windows (``python -m
# bench.bench_clusters``): the smallest grid value with no alarm, times 1.5.
# river's default (50) never fires on these value ranges, and thresholds
# under 1 fired on stable series. NOTE: the label-share value is not
# calibrated (the calibration stream has one label per cluster).
DEFAULT_PAGE_HINKLEY_THRESHOLDS: Mapping[str, float] = {
    SIZE: 1.5,
    CENTROID_SHIFT: 1.125,
    PORT_JACCARD: 3.0,
    MAIN_LABEL_SHARE: 1.5,
}
# ADWIN's delta is a confidence bound: smaller means fewer alarms. Both the
# river default 0.002 and 1e-5 raised no alarm on the stable calibration
# series; the smaller value keeps a margin for noisier real embeddings.
DEFAULT_ADWIN_DELTA = 1e-5

STATE_FILE = "drift.json"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ClusterObservation:
    """The state of one tracked cluster in one window.

    ``centroid`` is the unit mean vector of the members, ``port_packets`` the
    members' packets per destination port in the window, ``main_label_share``
    the share of members carrying the most common known label (None when no
    member is labelled). ``member_ports`` contains the destination ports of
    each member active in the window (None: unknown, packets decide alone).
    ``joined`` counts the members new to the telescope that joined the
    cluster recently, and ``joined_port_share`` is the share of them known
    for ``joined_port`` (None: not measured, so the size rule does not ask
    for it).
    """

    size: int
    centroid: np.ndarray | None
    port_packets: Mapping[int, int]
    main_label_share: float | None = None
    member_ports: tuple[frozenset[int], ...] | None = None
    joined: int | None = None
    joined_port: int | None = None
    joined_port_share: float | None = None


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """One reason to believe a cluster changed in one window.

    ``rule`` is ``port_set_changed``, ``size_burst`` or ``detector`` (then
    ``series`` and ``detector_name`` say which); ``evidence`` holds the numbers.
    """

    cluster_id: str
    window_index: int
    rule: str
    evidence: Mapping[str, Any]
    series: str | None = None
    detector_name: str | None = None


@dataclass(slots=True)
class _ClusterState:
    windows: list[int] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SERIES})
    last_centroid: list[float] | None = None
    port_history: dict[int, float] = field(default_factory=dict)
    port_history_windows: int = 0
    low_jaccard_run: int = 0
    mean_size: float | None = None
    size_history_windows: int = 0
    burst_run: int = 0


def weighted_port_set(weights: Mapping[int, float], min_share: float) -> set[int]:
    """Return the ports carrying at least ``min_share`` of the total weight."""
    total = sum(weights.values())
    if total <= 0:
        return set()
    return {port for port, weight in weights.items() if weight / total >= min_share}


def jaccard(left: set[int], right: set[int]) -> float:
    """Return the Jaccard index of two sets (1.0 when both are empty)."""
    union = left | right
    return len(left & right) / len(union) if union else 1.0


class _Detectors:
    """One ADWIN and one Page-Hinkley detector per series of one cluster."""

    def __init__(self, adwin_delta: float, thresholds: Mapping[str, float], min_instances: int) -> None:
        self.adwin = {name: ADWIN(delta=adwin_delta) for name in SERIES}
        self.page_hinkley = {
            name: PageHinkley(min_instances=min_instances, threshold=thresholds[name], delta=0.005)
            for name in SERIES
        }

    def update(self, name: str, value: float) -> list[str]:
        """Feed one value and return the names of the detectors that flagged drift."""
        fired = []
        for detector_name, detector in (("adwin", self.adwin[name]), ("page_hinkley", self.page_hinkley[name])):
            # river 0.26 returns None from update(): the flag is read afterwards.
            detector.update(value)
            if detector.drift_detected:
                fired.append(detector_name)
        return fired


class ClusterDrift:
    """Per tracked cluster drift series, detectors and rules.

    Rules: ``port_set_changed`` fires when the Jaccard index between the
    window's port set and the history's port set stays below
    ``port_jaccard_threshold``, with at least ``port_new_share_min`` of the
    window's packets on ports outside the history's set, for
    ``port_change_windows`` windows with traffic in a row, once the history
    covers ``min_history_windows`` windows. The history is an exponentially
    weighted port distribution (weight ``port_history_alpha`` per window,
    about a day by default) because campaigns inside one cluster hit
    different ports in different hours. ``size_burst`` fires when
    the size reaches ``size_burst_ratio`` times the exponentially weighted
    mean size and exceeds it by ``size_burst_min_senders`` for
    ``size_burst_windows`` windows in a row, and, when the observation says
    who joined, at least ``size_burst_min_senders`` new senders joined and
    at least ``size_burst_min_port_share`` of them share one port: senders
    that clustering moved over from other clusters, and lone scanners and
    noise that drift in, are not a group that grew. A port rule needs the history's
    port set to hold ``port_set_min_coverage`` of its packets, and at least
    ``port_new_share_min`` of the active members to hit only ports outside
    it. After a rule fires
    its baseline restarts from the current window, so one change fires once.
    The port rule runs only when ``port_rule`` is on. The monitor turns it
    off by default and uses ``MemberPortDrift``, which compares each sender
    with its own past, so senders joining are not mistaken for a change.
    Detector alarms (ADWIN, Page-Hinkley) are reported when
    ``detector_findings`` is on. A port set is the ports with at least
    ``port_min_share`` of the packets; windows where the cluster sent fewer
    than ``port_min_packets`` packets leave the port rule and series alone.
    """

    def __init__(
        self,
        port_jaccard_threshold: float = 0.5,
        port_change_windows: int = 2,
        port_min_share: float = 0.05,
        port_min_packets: int = 20,
        port_history_alpha: float = 1.0 / 24.0,
        port_new_share_min: float = 0.5,
        port_set_min_coverage: float = 0.8,
        size_burst_ratio: float = 2.0,
        size_burst_min_senders: int = 10,
        size_burst_windows: int = 2,
        size_burst_min_port_share: float = 0.8,
        size_history_alpha: float = 0.3,
        min_history_windows: int = 12,
        detector_findings: bool = True,
        page_hinkley_thresholds: Mapping[str, float] | None = None,
        page_hinkley_min_instances: int = 8,
        adwin_delta: float = DEFAULT_ADWIN_DELTA,
        max_series_windows: int = 720,
        port_rule: bool = True,
    ) -> None:
        _check_share("port_jaccard_threshold", port_jaccard_threshold)
        _check_share("size_burst_min_port_share", size_burst_min_port_share)
        _check_share("port_min_share", port_min_share)
        _check_share("port_history_alpha", port_history_alpha)
        _check_share("port_new_share_min", port_new_share_min)
        _check_share("port_set_min_coverage", port_set_min_coverage)
        _check_share("size_history_alpha", size_history_alpha)
        if size_burst_ratio <= 1.0:
            raise ConfigError(f"size_burst_ratio must be above 1, got {size_burst_ratio}")
        if min(port_change_windows, size_burst_windows, min_history_windows, page_hinkley_min_instances, max_series_windows) < 1:
            raise ConfigError("port_change_windows, size_burst_windows, min_history_windows, page_hinkley_min_instances and "
                              "max_series_windows must be at least 1")
        thresholds = dict(DEFAULT_PAGE_HINKLEY_THRESHOLDS)
        thresholds.update(page_hinkley_thresholds or {})
        unknown = set(thresholds) - set(SERIES)
        if unknown:
            raise ConfigError(f"page_hinkley_thresholds has unknown series {sorted(unknown)}: use {', '.join(SERIES)}")
        self.port_jaccard_threshold = port_jaccard_threshold
        self.port_change_windows = port_change_windows
        self.port_min_share = port_min_share
        self.port_min_packets = port_min_packets
        self.port_history_alpha = port_history_alpha
        self.port_new_share_min = port_new_share_min
        self.port_set_min_coverage = port_set_min_coverage
        self.size_burst_windows = size_burst_windows
        self.size_burst_ratio = size_burst_ratio
        self.size_burst_min_senders = size_burst_min_senders
        self.size_burst_min_port_share = size_burst_min_port_share
        self.port_rule = port_rule
        self.size_history_alpha = size_history_alpha
        self.min_history_windows = min_history_windows
        self.detector_findings = detector_findings
        self.page_hinkley_thresholds = thresholds
        self.page_hinkley_min_instances = page_hinkley_min_instances
        self.adwin_delta = adwin_delta
        self.max_series_windows = max_series_windows
        self._states: dict[str, _ClusterState] = {}
        self._detectors: dict[str, _Detectors] = {}
        self.nonfinite_counts: dict[str, int] = {name: 0 for name in SERIES}

    def cluster_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._states))

    def series(self, cluster_id: str) -> Mapping[str, Sequence[float]]:
        """Return the recorded series of one cluster (empty if unknown)."""
        state = self._states.get(cluster_id)
        return {name: tuple(values) for name, values in state.series.items()} if state else {}

    def forget(self, keep: Iterable[str]) -> None:
        """Drop the state of every cluster not in ``keep`` (ids that tracking has dropped)."""
        keep = set(keep)
        for cluster_id in [cid for cid in self._states if cid not in keep]:
            del self._states[cluster_id]
            self._detectors.pop(cluster_id, None)

    def update(self, window_index: int, observations: Mapping[str, ClusterObservation]) -> list[DriftFinding]:
        """Record one window of observations (tracked id to observation) and return the findings."""
        findings: list[DriftFinding] = []
        for cluster_id in sorted(observations):
            findings.extend(self._update_cluster(cluster_id, window_index, observations[cluster_id]))
        return findings

    def _update_cluster(self, cluster_id: str, window_index: int, observation: ClusterObservation) -> list[DriftFinding]:
        state = self._states.setdefault(cluster_id, _ClusterState())
        detectors = self._detectors.setdefault(cluster_id, self._new_detectors())
        values = self._series_values(state, observation)
        findings = self._apply_rules(cluster_id, window_index, state, observation, values)

        # Record the window and feed the detectors, skipping non-finite values.
        state.windows.append(window_index)
        for name in SERIES:
            value = values[name]
            if value is not None and not math.isfinite(value):
                self.nonfinite_counts[name] += 1
                logger.debug("non-finite %s for cluster %s in window %s skipped", name, cluster_id, window_index)
                value = None
            state.series[name].append(float("nan") if value is None else value)
            if value is None:
                continue
            for detector_name in detectors.update(name, value):
                if self.detector_findings:
                    findings.append(DriftFinding(
                        cluster_id, window_index, DETECTOR,
                        {"series": name, "value": round(value, 6), "detector": detector_name,
                         "threshold": self.page_hinkley_thresholds[name] if detector_name == "page_hinkley"
                         else self.adwin_delta},
                        series=name, detector_name=detector_name,
                    ))
        self._truncate(cluster_id, state)
        return findings

    def _series_values(self, state: _ClusterState, observation: ClusterObservation) -> dict[str, float | None]:
        values: dict[str, float | None] = {name: None for name in SERIES}
        values[SIZE] = math.log(observation.size) if observation.size > 0 else None
        if observation.centroid is not None:
            centroid = np.asarray(observation.centroid, dtype=np.float64)
            if state.last_centroid is not None:
                values[CENTROID_SHIFT] = float(1.0 - centroid @ np.asarray(state.last_centroid))
            if np.isfinite(centroid).all():
                state.last_centroid = centroid.tolist()
        if sum(observation.port_packets.values()) >= self.port_min_packets and state.port_history:
            current = weighted_port_set(observation.port_packets, self.port_min_share)
            history = weighted_port_set(state.port_history, self.port_min_share)
            values[PORT_JACCARD] = jaccard(current, history)
        values[MAIN_LABEL_SHARE] = observation.main_label_share
        return values

    def _apply_rules(
        self, cluster_id: str, window_index: int, state: _ClusterState, observation: ClusterObservation,
        values: Mapping[str, float | None],
    ) -> list[DriftFinding]:
        findings = []
        if self.port_rule:
            port_finding = self._port_rule(cluster_id, window_index, state, observation, values[PORT_JACCARD])
            if port_finding:
                findings.append(port_finding)
        else:
            self._learn_ports(observation, state)
        size_finding = self._size_rule(cluster_id, window_index, state, observation)
        if size_finding:
            findings.append(size_finding)
        return findings

    def _port_rule(
        self, cluster_id: str, window_index: int, state: _ClusterState, observation: ClusterObservation,
        value: float | None,
    ) -> DriftFinding | None:
        total = sum(observation.port_packets.values())
        if total < self.port_min_packets:
            return None
        shares = {int(port): packets / total for port, packets in observation.port_packets.items()}
        finding = None
        ready = state.port_history_windows >= self.min_history_windows
        history = weighted_port_set(state.port_history, self.port_min_share)
        # Share of this window's packets on ports outside the history's set:
        # a campaign that adds one port to a busy cluster moves the Jaccard
        # index but not where the traffic goes.
        new_port_share = sum(share for port, share in shares.items() if port not in history)
        # Count senders as well as packets: a few heavy senders that join a
        # cluster move its packets without the group changing its ports.
        new_sender_share = new_port_share
        if observation.member_ports:
            moved = sum(1 for ports in observation.member_ports if ports and not ports & history)
            new_sender_share = moved / len(observation.member_ports)
        # A cluster whose history spreads over many small ports (lone
        # scanners, noise) has no port set to change, so the rule skips it.
        history_total = sum(state.port_history.values())
        coverage = (sum(state.port_history[port] for port in history) / history_total) if history_total else 0.0
        if (value is not None and math.isfinite(value) and value < self.port_jaccard_threshold and ready
                and min(new_port_share, new_sender_share) >= self.port_new_share_min
                and coverage >= self.port_set_min_coverage):
            state.low_jaccard_run += 1
        else:
            state.low_jaccard_run = 0
        if state.low_jaccard_run >= self.port_change_windows:
            current = weighted_port_set(shares, self.port_min_share)
            finding = DriftFinding(cluster_id, window_index, PORT_SET_CHANGED, {
                "jaccard_vs_history": round(float(value or 0.0), 6),
                "threshold": self.port_jaccard_threshold,
                "new_port_share": round(new_port_share, 6),
                "new_port_sender_share": round(new_sender_share, 6),
                "min_new_port_share": self.port_new_share_min,
                "history_port_set_coverage": round(coverage, 6),
                "windows": self.port_change_windows,
                "ports_added": sorted(current - history),
                "ports_removed": sorted(history - current),
                "history_windows": state.port_history_windows,
            })
            # Restart the history from the new port set so the change fires once.
            state.port_history = {}
            state.port_history_windows = 0
            state.low_jaccard_run = 0
        if state.low_jaccard_run == 0:
            # A window that may start a change is held out of the history,
            # else the new ports blend in and the change is never confirmed.
            self._blend_ports(state, shares)
        return finding

    def _learn_ports(self, observation: ClusterObservation, state: _ClusterState) -> None:
        # The Jaccard series still needs the history when the rule is off.
        total = sum(observation.port_packets.values())
        if total >= self.port_min_packets:
            self._blend_ports(state, {int(port): packets / total for port, packets in observation.port_packets.items()})

    def _blend_ports(self, state: _ClusterState, shares: Mapping[int, float]) -> None:
        # A plain mean until 1/alpha windows are seen: the first window alone
        # would otherwise weigh as much as the next dozen together.
        alpha = max(self.port_history_alpha, 1.0 / (state.port_history_windows + 1))
        blended = {port: (1.0 - alpha) * weight for port, weight in state.port_history.items()}
        for port, share in shares.items():
            blended[port] = blended.get(port, 0.0) + alpha * share
        # Ports whose weight decayed to nothing are dropped to bound the state.
        state.port_history = {port: weight for port, weight in blended.items() if weight >= 1e-4}
        state.port_history_windows += 1

    def _size_rule(self, cluster_id: str, window_index: int, state: _ClusterState,
                   observation: ClusterObservation) -> DriftFinding | None:
        finding = None
        size = observation.size
        mean = state.mean_size
        grown = (mean is not None and state.size_history_windows >= self.min_history_windows
                 and size >= self.size_burst_ratio * mean and size - mean >= self.size_burst_min_senders)
        share = observation.joined_port_share
        joined_group = share is None or (share >= self.size_burst_min_port_share
                                         and (observation.joined or 0) >= self.size_burst_min_senders)
        bursting = grown and joined_group
        state.burst_run = state.burst_run + 1 if bursting else 0
        if bursting and state.burst_run >= self.size_burst_windows:
            assert mean is not None
            finding = DriftFinding(cluster_id, window_index, SIZE_BURST, {
                "size": size, "mean_size": round(mean, 3), "ratio": round(size / mean, 3),
                "threshold_ratio": self.size_burst_ratio, "windows": self.size_burst_windows,
                "history_windows": state.size_history_windows,
                "joined_senders": observation.joined, "joined_port": observation.joined_port,
                "joined_port_share": None if share is None else round(share, 6),
                "min_joined_port_share": self.size_burst_min_port_share,
            })
            state.mean_size = None
            state.size_history_windows = 0
            state.burst_run = 0
        if bursting and finding is None:
            # A window that may start a burst stays out of the mean until the
            # burst is confirmed or over, as with the port history. Growth by
            # senders without a shared port enters the mean, so the baseline
            # follows a cluster that fills with noise.
            return None
        if state.mean_size is None:
            state.mean_size = float(size)
        else:
            state.mean_size = (1.0 - self.size_history_alpha) * state.mean_size + self.size_history_alpha * size
        state.size_history_windows += 1
        return finding

    def _new_detectors(self) -> _Detectors:
        return _Detectors(self.adwin_delta, self.page_hinkley_thresholds, self.page_hinkley_min_instances)

    def _replay(self, state: _ClusterState) -> _Detectors:
        detectors = self._new_detectors()
        for name in SERIES:
            for value in state.series[name]:
                if math.isfinite(value):
                    detectors.update(name, value)
        return detectors

    def _truncate(self, cluster_id: str, state: _ClusterState) -> None:
        if len(state.windows) <= self.max_series_windows:
            return
        # Keep the newer half and rebuild the detectors from it, exactly as a
        # load would, so a restored run and a live one stay identical.
        keep = self.max_series_windows // 2
        state.windows = state.windows[-keep:]
        state.series = {name: values[-keep:] for name, values in state.series.items()}
        self._detectors[cluster_id] = self._replay(state)

    def save(self, directory: Path) -> None:
        """Write every cluster's series and rule state as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        clusters = {}
        for cluster_id, state in sorted(self._states.items()):
            clusters[cluster_id] = {
                "windows": state.windows,
                "series": {name: [_encode_float(v) for v in values] for name, values in state.series.items()},
                "last_centroid": state.last_centroid,
                "port_history": {str(port): weight for port, weight in sorted(state.port_history.items())},
                "port_history_windows": state.port_history_windows,
                "low_jaccard_run": state.low_jaccard_run,
                "mean_size": state.mean_size,
                "size_history_windows": state.size_history_windows,
                "burst_run": state.burst_run,
            }
        document = {"version": STATE_VERSION, "clusters": clusters, "nonfinite_counts": self.nonfinite_counts}
        (directory / STATE_FILE).write_text(json.dumps(document, sort_keys=True), encoding="utf-8")

    def load(self, directory: Path) -> None:
        """Replace the state with the one saved in ``directory`` and rebuild the detectors by replay."""
        path = Path(directory) / STATE_FILE
        document = _read_json(path, "drift state")
        try:
            states = {}
            for cluster_id, entry in document["clusters"].items():
                states[cluster_id] = _ClusterState(
                    windows=[int(w) for w in entry["windows"]],
                    series={name: [_decode_float(v) for v in entry["series"][name]] for name in SERIES},
                    last_centroid=entry["last_centroid"],
                    port_history={int(port): float(weight) for port, weight in entry["port_history"].items()},
                    port_history_windows=int(entry["port_history_windows"]),
                    low_jaccard_run=int(entry["low_jaccard_run"]),
                    mean_size=entry["mean_size"],
                    size_history_windows=int(entry["size_history_windows"]),
                    burst_run=int(entry.get("burst_run", 0)),
                )
            counts = {name: int(document["nonfinite_counts"][name]) for name in SERIES}
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"drift state {path} is malformed: {error!r}") from error
        self._states = states
        self._detectors = {cluster_id: self._replay(state) for cluster_id, state in states.items()}
        self.nonfinite_counts = counts


@dataclass(frozen=True, slots=True)
class SenderLabel:
    """A sender's label with its confidence (1.0 for ground truth); ``label`` None means unknown."""

    label: str | None
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class LabelChange:
    """A sender whose confident label differs from its previous label (None: it was unknown)."""

    sender: str
    window_index: int
    previous: str | None
    current: str
    confidence: float


def as_sender_label(value: object) -> SenderLabel:
    """Read a label given as a string, None, a ``SenderLabel`` or a decision with ``label``/``confidence``.

    A decision whose ``abstained`` attribute is true counts as unknown.
    """
    if value is None or isinstance(value, str):
        return SenderLabel(value, 1.0)
    if isinstance(value, SenderLabel):
        return value
    label = getattr(value, "label", None)
    confidence = getattr(value, "confidence", None)
    if confidence is None or (label is not None and not isinstance(label, str)):
        raise ConfigError(f"cannot read a sender label from {value!r}: give a string or an object "
                          "with a str label and a float confidence")
    if getattr(value, "abstained", False):
        label = None
    return SenderLabel(label, float(confidence))


class LabelChanges:
    """Notice senders whose confident label changes: unknown to a class, or one class to another.

    A label counts when its confidence is at least ``min_confidence``. A new
    label fires once it has been the sender's confident label in
    ``persist_windows`` consecutive windows in which the sender was active,
    because kNN labels of barely trained senders flip from window to window.
    A sender's first label never fires (there is nothing to change from),
    an unknown or low-confidence label never replaces a known one (it only
    breaks a pending run), and a sender first seen as unknown fires when it
    later keeps a confident class.
    """

    def __init__(self, min_confidence: float = 0.8, persist_windows: int = 2) -> None:
        _check_share("label_change min_confidence", min_confidence)
        if persist_windows < 1:
            raise ConfigError(f"label_change persist_windows must be at least 1, got {persist_windows}")
        self.min_confidence = min_confidence
        self.persist_windows = persist_windows
        self._labels: dict[str, str | None] = {}
        self._pending: dict[str, tuple[str, int]] = {}

    def __len__(self) -> int:
        return len(self._labels)

    def update(self, window_index: int, labels: Mapping[str, object],
               active: Collection[str] | None = None) -> list[LabelChange]:
        """Record this window's labels (sender to label or decision) and return the changes, by sender.

        ``active`` contains the senders seen in this window (None: all of
        ``labels``); only their labels advance or break a pending change,
        since a label repeated for an absent sender is no new evidence.
        """
        changes = []
        for sender in sorted(labels):
            if active is not None and sender not in active and sender in self._labels:
                continue
            decision = as_sender_label(labels[sender])
            confident = decision.label is not None and decision.confidence >= self.min_confidence
            if sender not in self._labels:
                self._labels[sender] = decision.label if confident else None
                continue
            if not confident or decision.label == self._labels[sender]:
                self._pending.pop(sender, None)
                continue
            assert decision.label is not None
            label, windows = self._pending.get(sender, (decision.label, 0))
            windows = windows + 1 if label == decision.label else 1
            if windows >= self.persist_windows:
                changes.append(LabelChange(sender, window_index, self._labels[sender], decision.label,
                                           decision.confidence))
                self._labels[sender] = decision.label
                self._pending.pop(sender, None)
            else:
                self._pending[sender] = (decision.label, windows)
        return changes

    def forget(self, senders: Iterable[str]) -> None:
        """Drop expired senders so the state stays bounded by the live senders."""
        for sender in senders:
            self._labels.pop(sender, None)
            self._pending.pop(sender, None)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {"version": STATE_VERSION, "labels": dict(sorted(self._labels.items())),
                    "pending": {sender: list(entry) for sender, entry in sorted(self._pending.items())}}
        (directory / "labels.json").write_text(json.dumps(document), encoding="utf-8")

    def load(self, directory: Path) -> None:
        path = Path(directory) / "labels.json"
        document = _read_json(path, "label state")
        labels = document.get("labels")
        pending = document.get("pending", {})
        if not isinstance(labels, dict) or not isinstance(pending, dict):
            raise StateError(f"label state {path} has no labels or pending mapping")
        try:
            self._pending = {str(sender): (str(entry[0]), int(entry[1])) for sender, entry in pending.items()}
        except (IndexError, TypeError, ValueError) as error:
            raise StateError(f"label state {path} has a malformed pending entry: {error!r}") from error
        self._labels = {str(sender): (None if label is None else str(label)) for sender, label in labels.items()}


def calibrate_page_hinkley(
    stable_series: Sequence[Sequence[float]],
    grid: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
    min_instances: int = 8,
    margin: float = 1.5,
) -> tuple[float, dict[float, int]]:
    """Return a Page-Hinkley threshold with no alarm on stable series, and the alarm count per grid value.

    The threshold is the smallest grid value that raises no alarm on any of
    ``stable_series``, times ``margin``; raises ``ConfigError`` if every grid
    value raises alarms.
    """
    alarms: dict[float, int] = {}
    for threshold in grid:
        count = 0
        for series in stable_series:
            detector = PageHinkley(min_instances=min_instances, threshold=threshold, delta=0.005)
            count += _count_alarms(detector, series)
        alarms[threshold] = count
    quiet = [threshold for threshold in grid if alarms[threshold] == 0]
    if not quiet:
        raise ConfigError(f"every Page-Hinkley threshold in {list(grid)} raised alarms on the stable series")
    return quiet[0] * margin, alarms


def count_adwin_alarms(stable_series: Sequence[Sequence[float]], delta: float) -> int:
    """Return how many ADWIN alarms ``delta`` raises on the stable series."""
    count = 0
    for series in stable_series:
        count += _count_alarms(ADWIN(delta=delta), series)
    return count


def _count_alarms(detector: ADWIN | PageHinkley, series: Sequence[float]) -> int:
    alarms = 0
    for value in series:
        if math.isfinite(value):
            detector.update(value)
            alarms += int(detector.drift_detected)
    return alarms


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {value}")


def _encode_float(value: float) -> float | None:
    # JSON has no NaN: a gap (no data that window) is stored as null.
    return None if math.isnan(value) else value


def _decode_float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StateError(f"cannot read {what} {path}: {error}") from error
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise StateError(f"{what} {path} is not version {STATE_VERSION}: restore a matching checkpoint")
    return document
