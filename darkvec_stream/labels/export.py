"""Export sender labels and vectors for analysts and other tools, and read vectors back.

Labels go to CSV ``ip,label,confidence,source``. Vectors go to CSV
``ip,v0..vN`` or to Parquet with a string column ``ip`` and a fixed-size
list column ``vector`` of float32. Producing the labels and vectors is the
book's, the labeller's and the embedding's job; this module only writes
and reads files.
"""

from __future__ import annotations

import csv
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from darkvec_stream.errors import InputError
from darkvec_stream.labels.knn import LabelDecision, LabelLookup

logger = logging.getLogger(__name__)

VECTOR_FORMATS = ("csv", "parquet")
KNN_SOURCE = "knn"
LABEL_HEADER = ("ip", "label", "confidence", "source")
# From this many senders the default vector format is Parquet, because at 50
# dimensions CSV measured 2.5 to 3.2 times larger and 8 to 15 times slower to
# write (bench/bench_labels.py).
PARQUET_MIN_SENDERS = 50_000
_PARQUET_MAGIC = b"PAR1"


class LabelRow(NamedTuple):
    """One exported label: ``source`` is a source name, ``mirai-fingerprint`` or ``knn``."""

    ip: str
    label: str
    confidence: float
    source: str


def label_rows(
    senders: Iterable[str],
    book: LabelLookup,
    decisions: Iterable[LabelDecision] = (),
) -> list[LabelRow]:
    """Combine ground truth (confidence 1) and kNN decisions into label rows.

    Ground truth wins over a kNN decision for the same sender; abstentions
    are left out. ``book`` may be a ``LabelBook`` (its ``match`` gives the
    source name) or any object with ``label_of``.
    """
    rows: dict[str, LabelRow] = {}
    match = getattr(book, "match", None)
    for sender in senders:
        if callable(match):
            found = match(sender)
            if found is not None:
                rows[sender] = LabelRow(sender, found.label, 1.0, found.source)
            continue
        label = book.label_of(sender)
        if label is not None:
            rows[sender] = LabelRow(sender, label, 1.0, "ground-truth")
    for decision in decisions:
        if decision.label is None or decision.sender in rows:
            continue
        rows[decision.sender] = LabelRow(decision.sender, decision.label, decision.confidence, KNN_SOURCE)
    return list(rows.values())


def write_labels_csv(path: Path, rows: Iterable[LabelRow]) -> int:
    """Write label rows to CSV (atomically); return the number of rows."""
    count = 0
    with _atomic_text(Path(path)) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABEL_HEADER)
        for row in rows:
            writer.writerow((row.ip, row.label, f"{row.confidence:.4f}", row.source))
            count += 1
    return count


def choose_vector_format(senders: int, requested: str | None = None) -> str:
    """Return the requested vector format, or the default for this many senders."""
    if requested is None or requested == "auto":
        return "parquet" if senders >= PARQUET_MIN_SENDERS else "csv"
    if requested not in VECTOR_FORMATS:
        raise InputError(f"vector format {requested!r} is invalid; use one of {', '.join(VECTOR_FORMATS)} or auto")
    return requested


def write_vectors(path: Path, senders: Sequence[str], vectors: np.ndarray, vector_format: str | None = None) -> str:
    """Write sender vectors in the chosen (or size-based default) format; return the format."""
    matrix = _check_vectors(senders, vectors)
    chosen = choose_vector_format(len(senders), vector_format)
    if chosen == "parquet":
        write_vectors_parquet(path, senders, matrix)
    else:
        write_vectors_csv(path, senders, matrix)
    return chosen


def write_vectors_csv(path: Path, senders: Sequence[str], vectors: np.ndarray) -> None:
    """Write ``ip,v0..vN`` rows; 9 significant digits keep float32 values exact."""
    matrix = _check_vectors(senders, vectors)
    header = ["ip"] + [f"v{index}" for index in range(matrix.shape[1])]
    with _atomic_text(Path(path)) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for sender, row in zip(senders, matrix.tolist()):
            writer.writerow([sender] + [f"{value:.9g}" for value in row])


def write_vectors_parquet(path: Path, senders: Sequence[str], vectors: np.ndarray) -> None:
    """Write a Parquet table: ``ip`` (string) and ``vector`` (fixed-size list of float32)."""
    matrix = _check_vectors(senders, vectors)
    dimensions = matrix.shape[1]
    flat = pa.array(np.ascontiguousarray(matrix).reshape(-1), type=pa.float32())
    vector_column = pa.FixedSizeListArray.from_arrays(flat, dimensions)
    table = pa.table({"ip": pa.array(list(senders), type=pa.string()), "vector": vector_column})
    temporary = Path(f"{path}.tmp")
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)


def read_vectors(path: Path) -> tuple[list[str], np.ndarray]:
    """Read vectors written by this module (format detected from the file's magic bytes)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise InputError(f"cannot read vectors file {path}: {error}") from error
    if magic == _PARQUET_MAGIC:
        return _read_vectors_parquet(path)
    return _read_vectors_csv(path)


def _read_vectors_parquet(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"vectors file {path} is not a readable Parquet file: {error}") from error
    if "ip" not in table.column_names or "vector" not in table.column_names:
        raise InputError(f"vectors file {path} needs columns 'ip' and 'vector', has {table.column_names}")
    senders = [str(value) for value in table.column("ip").to_pylist()]
    column = table.column("vector").combine_chunks()
    if not pa.types.is_fixed_size_list(column.type):
        raise InputError(f"vectors file {path}: column 'vector' is {column.type}, expected a fixed-size list of float")
    dimensions = column.type.list_size
    matrix = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dimensions)
    return senders, matrix


def _read_vectors_csv(path: Path) -> tuple[list[str], np.ndarray]:
    senders: list[str] = []
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0].strip().lower() != "ip" or len(header) < 2:
            raise InputError(f"vectors file {path}: header must be ip,v0,v1,...; got {header}")
        width = len(header)
        for number, cells in enumerate(reader, start=2):
            if len(cells) != width:
                raise InputError(f"vectors file {path} line {number}: {len(cells)} fields, expected {width}")
            try:
                rows.append([float(cell) for cell in cells[1:]])
            except ValueError as error:
                raise InputError(f"vectors file {path} line {number}: {error}") from error
            senders.append(cells[0])
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), width - 1)
    return senders, matrix


def _check_vectors(senders: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(senders):
        raise InputError(f"{len(senders)} senders but vectors of shape {matrix.shape}; they must pair one to one")
    return matrix


@contextmanager
def _atomic_text(path: Path) -> Iterator[TextIO]:
    """Write a text file under a temporary name, then rename it into place."""
    temporary = Path(f"{path}.tmp")
    try:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            yield handle
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
