"""The one internal alert model that every SIEM rendering starts from.

Detectors build ``Alert`` values. Renderers (JSON lines, ECS, CEF, OCSF,
STIX, Splunk HEC) and sinks only read them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


class AlertType(str, Enum):
    NEW_CLUSTER = "new_cluster"
    REEMERGED_CLUSTER = "reemerged_cluster"
    CLUSTER_DRIFT = "cluster_drift"
    LABEL_CHANGE = "label_change"


class Severity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Alert:
    """One explained alert.

    ``alert_id`` is derived from the type, the cluster or sender and the
    change itself, so a restarted daemon that reprocesses a window produces
    the same id and sinks can drop the duplicate. ``evidence`` holds the
    numbers behind the decision (for example the ADWIN statistic, the
    Jaccard index of the port sets, the share of unknown members), and
    ``summary`` states in one sentence why the alert fired.
    ``sender_labels`` maps senders named in the alert (``sender`` and
    ``sample_members``) to their label when that label is ground truth or a
    confident kNN decision; the STIX rendering turns each entry into an
    indicator. Senders without a confident label are left out.
    """

    alert_id: str
    type: AlertType
    severity: Severity
    time_ns: int
    window_index: int
    window_start_ns: int
    window_end_ns: int
    cluster_id: str | None
    member_count: int
    sample_members: tuple[str, ...]
    top_ports: tuple[tuple[int, int], ...]
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, int] = field(default_factory=dict)
    sender: str | None = None
    sender_labels: Mapping[str, str] = field(default_factory=dict)


def make_alert_id(alert_type: AlertType, subject: str, change: str) -> str:
    """Return a stable id for one change of one subject (cluster id or sender)."""
    digest = hashlib.sha256(f"{alert_type.value}|{subject}|{change}".encode()).hexdigest()
    return f"dvs-{digest[:24]}"
