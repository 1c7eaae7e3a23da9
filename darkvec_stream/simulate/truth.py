"""Ground-truth files of a simulated run, and a loader for tests and evaluation.

Writes ``senders.csv`` (who belongs to which group), ``labels.csv`` (the
partial list an operator would load), ``events.json`` (worm onsets and
port-set changes), ``config.json`` (every parameter, enough to rerun) and
``summary.json`` (what was generated). It neither generates nor judges traffic.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkvec_stream.errors import InputError
from darkvec_stream.simulate.addresses import format_ipv4
from darkvec_stream.simulate.engine import Simulation
from darkvec_stream.simulate.populations import NS_PER_S, CampaignModel, ContinuousModel, stream

SENDERS_FILE = "senders.csv"
LABELS_FILE = "labels.csv"
EVENTS_FILE = "events.json"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
SENDER_COLUMNS = ("ip", "group", "subgroup", "kind", "first_seen", "last_seen", "packets")


def iso_time(ts_ns: np.ndarray | int, resolution_ns: int = 1000) -> list[str]:
    """Format epoch ns as ISO 8601 UTC, to the microsecond unless finer resolution is used."""
    unit = "us" if resolution_ns % 1000 == 0 else "ns"
    values = np.atleast_1d(np.asarray(ts_ns, dtype=np.int64)).astype("datetime64[ns]")
    return [text + "Z" for text in np.datetime_as_string(values, unit=unit).tolist()]


def parse_iso_ns(text: str) -> int:
    """Parse a time written by ``iso_time`` back to epoch ns."""
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


def sender_rows(run: Simulation) -> list[tuple[int, str, str, str, int, int, int]]:
    """One row per sender that emitted at least one record, sorted by address."""
    rows = []
    for model, truth in zip(run.models, run.truth):
        seen = np.flatnonzero(truth.packets > 0)
        for sender in seen.tolist():
            rows.append((int(model.addresses[sender]), model.name,
                         model.subgroup_names[int(model.subgroup_of[sender])], model.kind,
                         int(truth.first_ns[sender]), int(truth.last_ns[sender]), int(truth.packets[sender])))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def write_senders(run: Simulation, directory: Path) -> int:
    rows = sender_rows(run)
    addresses = format_ipv4(np.asarray([row[0] for row in rows], dtype=np.uint32))
    resolution = run.config.time_resolution_ns
    first = iso_time(np.asarray([row[4] for row in rows], dtype=np.int64), resolution) if rows else []
    last = iso_time(np.asarray([row[5] for row in rows], dtype=np.int64), resolution) if rows else []
    with open(directory / SENDERS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SENDER_COLUMNS)
        for row, ip, first_seen, last_seen in zip(rows, addresses, first, last):
            writer.writerow((ip, row[1], row[2], row[3], first_seen, last_seen, row[6]))
    return len(rows)


def write_labels(run: Simulation, directory: Path) -> int:
    """Label a ``label_share`` of each labelled organisation's seen senders, at least one each.

    Botnets get no rows: an operator finds Mirai-like senders by the fingerprint.
    """
    rows: list[tuple[int, str]] = []
    for model, truth in zip(run.models, run.truth):
        label = getattr(model.spec, "label", None)
        if not label:
            continue
        seen = np.flatnonzero(truth.packets > 0)
        if not seen.size:
            continue
        rng = stream(run.config.seed, model.name, 3)
        count = max(1, round(seen.size * run.config.label_share)) if run.config.label_share > 0 else 0
        chosen = np.sort(rng.choice(seen, size=count, replace=False))
        rows += [(int(model.addresses[sender]), label) for sender in chosen.tolist()]
    rows.sort()
    addresses = format_ipv4(np.asarray([row[0] for row in rows], dtype=np.uint32))
    with open(directory / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("ip", "label"))
        writer.writerows((ip, row[1]) for ip, row in zip(addresses, rows))
    return len(rows)


def events(run: Simulation) -> list[dict[str, Any]]:
    """Onsets of groups that appear mid-run and port-set changes, in time order."""
    found: list[dict[str, Any]] = []
    resolution = run.config.time_resolution_ns
    for model in run.models:
        if isinstance(model, ContinuousModel) and model.onset_ns > run.config.start_ns:
            found.append({
                "type": "onset", "group": model.name, "subgroup": model.name, "kind": model.kind,
                "time": iso_time(model.onset_ns, resolution)[0], "time_ns": model.onset_ns,
                "ports": list(model.group.ports),
            })
        if isinstance(model, CampaignModel):
            for index, sub in enumerate(model.group.subgroups):
                change_ns = model.change_ns(index)
                if change_ns is None or change_ns >= run.config.end_ns:
                    continue
                found.append({
                    "type": "port_change", "group": model.name, "subgroup": sub.name, "kind": model.kind,
                    "time": iso_time(change_ns, resolution)[0], "time_ns": change_ns,
                    "ports_before": list(sub.ports), "ports_after": list(sub.ports_after),
                })
    found.sort(key=lambda event: (event["time_ns"], event["group"]))
    return found


def summary(run: Simulation, senders: int, labels: int, files: list[str]) -> dict[str, Any]:
    populations = {}
    for model, truth in zip(run.models, run.truth):
        populations[model.name] = {
            "kind": model.kind,
            "roster": model.senders,
            "senders": int((truth.packets > 0).sum()),
            "senders_10_packets": int((truth.packets >= 10).sum()),
            "packets": int(truth.packets.sum()),
        }
    return {
        "records": run.counters.records,
        "duplicates": run.counters.duplicates,
        "displaced": run.counters.displaced,
        "senders": senders,
        "labelled_senders": labels,
        "days": run.config.days,
        "start_ns": run.config.start_ns,
        "end_ns": run.config.end_ns,
        "files": files,
        "populations": populations,
    }


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class SenderTruthRow:
    """One row of ``senders.csv``."""

    ip: str
    group: str
    subgroup: str
    kind: str
    first_seen_ns: int
    last_seen_ns: int
    packets: int


@dataclass(frozen=True)
class Truth:
    """The truth files of one output directory, loaded."""

    senders: dict[str, SenderTruthRow]
    labels: dict[str, str]
    events: list[dict[str, Any]]
    config: dict[str, Any]
    summary: dict[str, Any]

    def group_of(self, ip: str) -> str | None:
        row = self.senders.get(ip)
        return row.group if row else None


def load_truth(directory: Path) -> Truth:
    """Load the truth files written by ``write_simulation`` from ``directory``."""
    directory = Path(directory)
    missing = [name for name in (SENDERS_FILE, LABELS_FILE, EVENTS_FILE, CONFIG_FILE, SUMMARY_FILE)
               if not (directory / name).is_file()]
    if missing:
        raise InputError(f"simulation output {directory} lacks {missing}; run `darkvec-stream simulate` first")
    senders = {}
    with open(directory / SENDERS_FILE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            senders[row["ip"]] = SenderTruthRow(
                row["ip"], row["group"], row["subgroup"], row["kind"], parse_iso_ns(row["first_seen"]),
                parse_iso_ns(row["last_seen"]), int(row["packets"]))
    with open(directory / LABELS_FILE, newline="", encoding="utf-8") as handle:
        labels = {row["ip"]: row["label"] for row in csv.DictReader(handle)}
    return Truth(
        senders=senders,
        labels=labels,
        events=json.loads((directory / EVENTS_FILE).read_text(encoding="utf-8")),
        config=json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")),
        summary=json.loads((directory / SUMMARY_FILE).read_text(encoding="utf-8")),
    )


__all__ = ["NS_PER_S", "Truth", "SenderTruthRow", "load_truth", "iso_time", "parse_iso_ns"]
