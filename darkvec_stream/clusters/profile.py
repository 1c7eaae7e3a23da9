"""Describe each cluster for an analyst: ports, services, subnets, label mix and activity over time.

Profiles are computed from a clustering, the recent closed windows (the
last one is the current window) and the known sender labels. It does not
cluster, track or alert; it only summarises.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from darkvec_stream.clusters.clustering import NOISE, Clustering
from darkvec_stream.windows.model import ClosedWindow

UNKNOWN_LABEL = "unknown"
NOT_AN_ADDRESS = "not-an-address"
NS_PER_HOUR = 3_600_000_000_000


@dataclass(frozen=True, slots=True)
class ClusterProfile:
    """What the members of one cluster did over the windows given.

    ``top_ports`` are ``(port, packets)`` pairs, ``top_services`` are
    ``(service, sender-windows)`` (a member active on a service in three
    windows counts three), subnet lists are ``(prefix, senders)``.
    ``label_counts`` counts members per label with ``unknown`` for members
    without a label. ``packets_per_window`` pairs each window index with the
    members' packets in it, and ``packets_per_hour`` counts packets by the
    UTC hour of day in which each member's activity in a window started.
    ``port_packets`` holds every port, not only the top ones.
    """

    cluster: int
    size: int
    silhouette: float
    active_senders: int
    packets: int
    first_seen_ns: int | None
    last_seen_ns: int | None
    top_ports: tuple[tuple[int, int], ...]
    top_services: tuple[tuple[str, int], ...]
    subnets_24: int
    subnets_16: int
    top_subnets_24: tuple[tuple[str, int], ...]
    top_subnets_16: tuple[tuple[str, int], ...]
    label_counts: Mapping[str, int]
    unknown_share: float
    packets_per_window: tuple[tuple[int, int], ...]
    packets_per_hour: tuple[int, ...]
    mirai_packets: int
    port_packets: Mapping[int, int]

    def to_json(self) -> dict[str, Any]:
        """Return the profile as JSON-ready built-in types."""
        return {
            "cluster": self.cluster,
            "size": self.size,
            "silhouette": None if np.isnan(self.silhouette) else round(self.silhouette, 6),
            "active_senders": self.active_senders,
            "packets": self.packets,
            "mirai_packets": self.mirai_packets,
            "first_seen_ns": self.first_seen_ns,
            "last_seen_ns": self.last_seen_ns,
            "top_ports": [list(pair) for pair in self.top_ports],
            "top_services": [list(pair) for pair in self.top_services],
            "subnets_24": self.subnets_24,
            "subnets_16": self.subnets_16,
            "top_subnets_24": [list(pair) for pair in self.top_subnets_24],
            "top_subnets_16": [list(pair) for pair in self.top_subnets_16],
            "label_counts": dict(self.label_counts),
            "unknown_share": round(self.unknown_share, 6),
            "packets_per_window": [list(pair) for pair in self.packets_per_window],
            "packets_per_hour": list(self.packets_per_hour),
        }


def subnet_of(sender: str, prefix_length: int) -> str:
    """Return the IPv4 ``/prefix_length`` (or IPv6 ``/prefix_length + 32``) of a sender, or ``not-an-address``.

    IPv6 prefixes are widened by 32 bits so that /24 and /16 stay comparable
    allocation units (/56 and /48). Anonymised tokens are not addresses.
    """
    if prefix_length in (8, 16, 24):
        # Fast path for the canonical dotted IPv4 form that the decoders emit:
        # ``ipaddress`` costs about 50 us per call, which dominated profiling.
        octets = sender.split(".")
        if len(octets) == 4 and all(o.isdigit() and len(o) <= 3 and o == str(int(o)) and int(o) <= 255 for o in octets):
            kept = prefix_length // 8
            return ".".join(octets[:kept] + ["0"] * (4 - kept)) + f"/{prefix_length}"
    try:
        address = ipaddress.ip_address(sender)
    except ValueError:
        return NOT_AN_ADDRESS
    length = prefix_length if address.version == 4 else prefix_length + 32
    return str(ipaddress.ip_network(f"{address}/{length}", strict=False))


def _top(counter: Counter[Any], count: int) -> tuple[tuple[Any, int], ...]:
    # Ties are broken by the key so profiles are identical across runs.
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))[:count])


class _Accumulator:
    """Running totals for one cluster while the windows are scanned."""

    def __init__(self) -> None:
        self.ports: Counter[int] = Counter()
        self.services: Counter[str] = Counter()
        self.packets = 0
        self.mirai_packets = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.per_window: dict[int, int] = {}
        self.per_hour = [0] * 24
        self.active: set[str] = set()


def _scan_windows(
    windows: Sequence[ClosedWindow], cluster_of: Mapping[str, int], totals: Mapping[int, _Accumulator]
) -> None:
    for window in windows:
        for total in totals.values():
            total.per_window.setdefault(window.index, 0)
        for sender, activity in window.activity.items():
            label = cluster_of.get(sender)
            if label is None:
                continue
            total = totals[label]
            total.active.add(sender)
            total.packets += activity.packets
            total.mirai_packets += activity.mirai_packets
            total.ports.update(activity.dst_ports)
            total.services.update(activity.services)
            total.per_window[window.index] += activity.packets
            total.per_hour[(activity.first_ns // NS_PER_HOUR) % 24] += activity.packets
            total.first_ns = activity.first_ns if total.first_ns is None else min(total.first_ns, activity.first_ns)
            total.last_ns = activity.last_ns if total.last_ns is None else max(total.last_ns, activity.last_ns)


def profile_clusters(
    clustering: Clustering,
    windows: Sequence[ClosedWindow] = (),
    labels: Mapping[str, str] | None = None,
    top_count: int = 5,
) -> dict[int, ClusterProfile]:
    """Build the profile of every cluster of ``clustering`` (noise excluded).

    ``windows`` are the recent closed windows in order; a member absent from
    all of them counts in ``size`` but not in ``active_senders``. ``labels``
    maps senders to a class; a missing sender or ``unknown`` is unknown.
    """
    labels = labels or {}
    members = clustering.clusters()
    cluster_of = {key: label for key, label in zip(clustering.keys, clustering.labels.tolist()) if label != NOISE}
    totals = {label: _Accumulator() for label in members}
    _scan_windows(windows, cluster_of, totals)
    silhouettes = clustering.cluster_silhouettes()

    profiles: dict[int, ClusterProfile] = {}
    for label, senders in members.items():
        total = totals[label]
        label_counts = Counter(labels.get(sender) or UNKNOWN_LABEL for sender in senders)
        subnets_24 = Counter(subnet_of(sender, 24) for sender in senders)
        subnets_16 = Counter(subnet_of(sender, 16) for sender in senders)
        profiles[label] = ClusterProfile(
            cluster=label,
            size=len(senders),
            silhouette=silhouettes[label],
            active_senders=len(total.active),
            packets=total.packets,
            first_seen_ns=total.first_ns,
            last_seen_ns=total.last_ns,
            top_ports=_top(total.ports, top_count),
            top_services=_top(total.services, top_count),
            subnets_24=len(subnets_24),
            subnets_16=len(subnets_16),
            top_subnets_24=_top(subnets_24, top_count),
            top_subnets_16=_top(subnets_16, top_count),
            label_counts=dict(sorted(label_counts.items())),
            unknown_share=label_counts[UNKNOWN_LABEL] / len(senders),
            packets_per_window=tuple(sorted(total.per_window.items())),
            packets_per_hour=tuple(total.per_hour),
            mirai_packets=total.mirai_packets,
            port_packets=dict(total.ports),
        )
    return profiles
