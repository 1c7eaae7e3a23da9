"""Run a simulation into an output directory, or stream its records in process.

This module wires the engine, the format writers and the truth files
together; it holds no traffic model of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from darkvec_stream.errors import InputError
from darkvec_stream.ingest.record import Record
from darkvec_stream.simulate.config import SimulationConfig
from darkvec_stream.simulate.engine import Simulation
from darkvec_stream.simulate.populations import NS_PER_DAY
from darkvec_stream.simulate.truth import (
    CONFIG_FILE,
    EVENTS_FILE,
    SUMMARY_FILE,
    events,
    summary,
    write_json,
    write_labels,
    write_senders,
)
from darkvec_stream.simulate.writers import EXTENSIONS, TrafficFile, check_format, encode_batch

logger = logging.getLogger(__name__)

Split = Literal["day", "none"]


@dataclass(frozen=True)
class SimulationResult:
    """What ``write_simulation`` wrote."""

    directory: Path
    traffic_files: tuple[Path, ...]
    records: int
    senders: int
    labelled_senders: int


def simulate_records(config: SimulationConfig) -> Iterator[Record]:
    """Yield the run's records in emission order (mostly event-time order).

    ``Record.mirai`` is ``None``: consumers compute the fingerprint from
    ``tcp_seq`` and ``dst`` as they would for a real capture.
    """
    for batch in Simulation(config).batches():
        yield from batch.records()


def simulate_messages(config: SimulationConfig, records_per_message: int = 500) -> Iterator[bytes]:
    """Yield Kafka message payloads of up to ``records_per_message`` record-csv lines each."""
    if records_per_message < 1:
        raise InputError(f"invalid records_per_message {records_per_message}: use 1 or more")
    for batch in Simulation(config).batches():
        for first in range(0, len(batch), records_per_message):
            part = batch.take(np.arange(first, min(first + records_per_message, len(batch))))
            yield encode_batch(part, "record-csv").rstrip(b"\n")


def traffic_name(format_name: str, day_ns: int | None, compress: bool) -> str:
    stem = "traffic"
    if day_ns is not None:
        stem += "-" + str(np.datetime64(day_ns // 1_000_000_000, "s").astype("datetime64[D]")).replace("-", "")
    suffix = "." + EXTENSIONS[format_name] + (".gz" if compress else "")
    return stem + suffix


def write_simulation(config: SimulationConfig, directory: Path, format_name: str = "record-csv",
                     compress: bool = False, split: Split = "day") -> SimulationResult:
    """Write traffic files and truth files of one run into ``directory``.

    With ``split="day"`` each UTC day of emission goes to its own file
    (``traffic-YYYYMMDD.<ext>``), like a telescope's daily rotation.
    """
    check_format(format_name)
    if split not in ("day", "none"):
        raise InputError(f"invalid split {split!r}; allowed: day, none")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    run = Simulation(config)
    files: list[Path] = []
    current: TrafficFile | None = None
    current_day: int | None = None
    for chunk_start_ns, batch in run.chunks():
        day = (chunk_start_ns - run.config.start_ns) // NS_PER_DAY if split == "day" else 0
        if current is None or day != current_day:
            if current is not None:
                current.close(_close_ns(run, current_day, split))
            open_ns = run.config.start_ns + day * NS_PER_DAY
            name = traffic_name(format_name, open_ns if split == "day" else None, compress)
            current = TrafficFile(directory / name, format_name, open_ns)
            current_day = day
            files.append(current.path)
            logger.info("writing %s", current.path)
        current.write(batch)
    if current is not None:
        current.close(_close_ns(run, current_day, split))

    senders = write_senders(run, directory)
    labels = write_labels(run, directory)
    write_json(directory / EVENTS_FILE, events(run))
    write_json(directory / CONFIG_FILE, run.config.to_dict())
    write_json(directory / SUMMARY_FILE, summary(run, senders, labels, [path.name for path in files]))
    logger.info("simulated %s records from %s senders into %s", run.counters.records, senders, directory)
    return SimulationResult(directory, tuple(files), run.counters.records, senders, labels)


def _close_ns(run: Simulation, day: int | None, split: Split) -> int:
    if split == "none" or day is None:
        return run.config.end_ns
    return min(run.config.start_ns + (day + 1) * NS_PER_DAY, run.config.end_ns)
