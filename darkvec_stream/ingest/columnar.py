"""Columnar fast path for record-csv blocks, built on ``pyarrow.csv``.

pyarrow parses a whole block of lines in C++; the checks that the line
decoder applies per field are applied here per column, and an address is
canonicalised once per distinct value. When anything in the block is
unusual the function returns None and the caller decodes the block line by
line, so rejects and their reasons come from one place only.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from darkvec_stream.ingest.address import AddressCache
from darkvec_stream.ingest.base import gc_paused
from darkvec_stream.ingest.errors import RecordError
from darkvec_stream.ingest.fields import MAX_TS_NS
from darkvec_stream.ingest.record import Record

_FIELDS = list(Record._fields)
_ADDRESS_FIELDS = ("src", "dst")
# Inclusive value range of each integer column, as the line decoder checks it.
_INTEGER_RANGES = {
    "ts_ns": (0, MAX_TS_NS),
    "src_port": (0, 65_535),
    "dst_port": (0, 65_535),
    "proto": (0, 255),
    "length": (0, 2**63 - 1),
    "tcp_flags": (0, 0xFFF),
    "ttl": (0, 255),
    "tcp_seq": (0, 2**32 - 1),
    "packets": (0, 2**63 - 1),
    "mirai": (0, 1),
}
_REQUIRED = ("ts_ns", "src", "packets")
# Bytes that the line decoder rejects but pyarrow's integer parser may
# accept or trim: such blocks take the line path.
_LINE_PATH_BYTES = (b"+", b" ", b"\t", b'"')

_COLUMN_TYPES = {name: pa.int64() for name in _INTEGER_RANGES}
_COLUMN_TYPES.update({"src": pa.string(), "dst": pa.string()})
_READ_OPTIONS = pcsv.ReadOptions(column_names=_FIELDS, use_threads=False, block_size=1 << 24)
_PARSE_OPTIONS = pcsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False)
_CONVERT_OPTIONS = pcsv.ConvertOptions(
    column_types=_COLUMN_TYPES,
    null_values=[""],
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
)

_new_record = tuple.__new__


def decode_block(block: bytes, addresses: AddressCache) -> list[Record] | None:
    """Decode a block of record-csv lines, or return None to use the line path."""
    if any(marker in block for marker in _LINE_PATH_BYTES):
        return None
    try:
        table = pcsv.read_csv(
            io.BytesIO(block),
            read_options=_READ_OPTIONS,
            parse_options=_PARSE_OPTIONS,
            convert_options=_CONVERT_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows == 0 or not _columns_valid(table):
        return None
    columns = _python_columns(table, addresses)
    if columns is None:
        return None
    with gc_paused():
        return list(map(_new_record, [Record] * table.num_rows, zip(*columns)))


def _columns_valid(table: pa.Table) -> bool:
    for name in _REQUIRED:
        if table.column(name).null_count:
            return False
    for name, (low, high) in _INTEGER_RANGES.items():
        column = table.column(name)
        if column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        if bounds["min"].as_py() < low or bounds["max"].as_py() > high:
            return False
    return True


def _python_columns(table: pa.Table, addresses: AddressCache) -> list[list[object]] | None:
    columns: list[list[object]] = []
    for name in _FIELDS:
        column = table.column(name).combine_chunks()
        if name in _ADDRESS_FIELDS:
            values = _address_column(column, addresses)
            if values is None:
                return None
        elif name == "mirai":
            values = _nullable_list(pc.equal(column, 1))
        else:
            values = _nullable_list(column)
        columns.append(values)
    return columns


def _address_column(column: pa.Array, addresses: AddressCache) -> list[object] | None:
    """Canonicalise each distinct address once and expand back to rows."""
    encoded = column.dictionary_encode()
    try:
        canonical = [addresses.canonical(text) for text in encoded.dictionary.to_pylist()]
    except RecordError:
        return None
    canonical.append(None)
    # Null rows point at the trailing None added above.
    indices = pc.fill_null(encoded.indices, len(canonical) - 1).to_numpy()
    lookup = np.array(canonical, dtype=object)
    result: list[object] = lookup[indices].tolist()
    return result


def _nullable_list(column: pa.Array) -> list[object]:
    """Convert a column to Python values quickly, with None for nulls."""
    nulls = column.null_count
    if nulls == len(column):
        return [None] * len(column)
    if nulls == 0:
        result: list[object] = column.to_numpy(zero_copy_only=False).tolist()
        return result
    values: list[object] = pc.fill_null(column, False if column.type == pa.bool_() else 0).to_numpy(
        zero_copy_only=False
    ).tolist()
    for index in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)).tolist():
        values[index] = None
    return values
