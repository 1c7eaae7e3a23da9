"""Generic CSV decoder with a configurable column map, its presets, and darkvec-csv.

A column map names, for each ``Record`` field, the CSV column that feeds it
(by header name or 0-based index) and a converter. Files map names through
their header line; Kafka messages carry no header, so name maps need
``fieldnames``, the column order of the feed. This module does not guess
layouts: a preset or an explicit map must say what each column is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest.base import MAX_LINE_BYTES, TextDecoder, check_max_line_bytes
from darkvec_stream.ingest.errors import MALFORMED, RecordError
from darkvec_stream.ingest.fieldmap import (
    FIELD_POSITIONS,
    REQUIRED_FIELDS,
    Converter,
    build_converters,
    build_record,
    check_field_names,
    check_required,
    empty_values,
)
from darkvec_stream.ingest.record import Record

DEFAULT_NULL_VALUES = ("", "-")

# Column index, Record field position, converter, Record field name.
PlanEntry = tuple[int, int, Converter, str]


@dataclass(frozen=True)
class CsvLayout:
    """A named column map: which column feeds each field and how to convert it."""

    columns: Mapping[str, str | int]
    converters: Mapping[str, str]
    fieldnames: tuple[str, ...] | None = None


PRESETS: dict[str, CsvLayout] = {
    # iptables log converted to CSV: the sensor name in ``host`` stands for
    # the destination, ``src`` is IPv4 as an unsigned 32-bit integer, and
    # ``type`` (the ICMP type) has no Record field.
    "marx-iptables": CsvLayout(
        columns={"ts_ns": "datetime", "dst": "host", "src": "src", "proto": "proto",
                 "src_port": "spt", "dst_port": "dpt"},
        converters={"ts_ns": "iso", "src": "integer_address", "dst": "token"},
        fieldnames=("datetime", "host", "src", "proto", "type", "spt", "dpt"),
    ),
}

# Raw trace layout of the DarkVec telescope: a leading unnamed datetime index
# column, ``ts`` in epoch seconds with a fraction, ``-`` for null.
DARKVEC_FIELDNAMES = (
    "", "ts", "ethtype", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "pck_len",
    "tcp_flags", "mirai", "tcp_seq", "ttl", "t_mss", "t_win", "t_ts", "t_sack", "t_sackp",
)
DARKVEC_LAYOUT = CsvLayout(
    columns={"ts_ns": "ts", "src": "src_ip", "src_port": "src_port", "dst": "dst_ip",
             "dst_port": "dst_port", "proto": "proto", "length": "pck_len",
             "tcp_flags": "tcp_flags", "mirai": "mirai", "tcp_seq": "tcp_seq", "ttl": "ttl"},
    converters={"ts_ns": "epoch_s"},
    fieldnames=DARKVEC_FIELDNAMES,
)


class CsvDecoder(TextDecoder):
    """Decoder of CSV text with a column map or a named preset.

    ``columns`` and ``converters`` override the preset's entries. Columns
    given by name are resolved against the file's header line, or against
    ``fieldnames`` for headerless input such as Kafka messages.
    """

    format = "csv"

    def __init__(
        self,
        *,
        preset: str | None = None,
        columns: Mapping[str, str | int] | None = None,
        converters: Mapping[str, str] | None = None,
        fieldnames: Sequence[str] | None = None,
        header: bool = True,
        delimiter: str = ",",
        null_values: Sequence[str] = DEFAULT_NULL_VALUES,
        allow_tokens: bool = False,
        address_cache_entries: int = 262_144,
        require_all_columns: bool = True,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        layout = _layout_from(preset, columns, converters, fieldnames)
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        if len(delimiter) != 1:
            raise ConfigError(f"csv delimiter must be one character, got {delimiter!r}")
        self.has_header = header
        self.delimiter = delimiter
        self.null_values = frozenset(null_values)
        self.require_all_columns = require_all_columns
        self.layout = layout
        self._converters = build_converters(
            layout.converters, list(layout.columns),
            allow_tokens=allow_tokens, address_cache_entries=address_cache_entries,
        )
        self._plan: list[PlanEntry] | None = None
        self._width = 0
        try:
            if all(isinstance(column, int) for column in layout.columns.values()):
                self._plan = self._make_plan({})
            elif layout.fieldnames is not None:
                self._plan = self._make_plan(_index_names(layout.fieldnames))
        except InputError as error:
            raise ConfigError(f"csv fieldnames do not match the column map: {error}") from None

    def _make_plan(self, index_of: Mapping[str, int]) -> list[PlanEntry]:
        plan: list[PlanEntry] = []
        for field, column in self.layout.columns.items():
            index = column if isinstance(column, int) else index_of.get(column)
            if index is None:
                if field in REQUIRED_FIELDS or self.require_all_columns:
                    raise InputError(
                        f"column {column!r} for field {field} not found; "
                        f"columns present: {', '.join(index_of) or '(none)'}"
                    )
                continue
            plan.append((index, FIELD_POSITIONS[field], self._converters[field], field))
        self._width = max(entry[0] for entry in plan) + 1
        return plan

    def bind_header(self, header: str, path: Path) -> TextDecoder | None:
        names = [name.strip().lstrip("\ufeff") for name in self._split(header)]
        bound = self._copy()
        try:
            bound._plan = bound._make_plan(_index_names(names))
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        return bound

    def _copy(self) -> CsvDecoder:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def _split(self, line: str) -> list[str]:
        if '"' in line:
            try:
                return next(csv.reader([line], delimiter=self.delimiter, strict=True))
            except csv.Error as error:
                raise RecordError(MALFORMED, f"invalid CSV quoting ({error})") from None
        return line.split(self.delimiter)

    def decode_line(self, line: str) -> Record:
        plan = self._plan
        if plan is None:
            raise ConfigError(
                "csv columns are mapped by name but the input has no header line; "
                "set fieldnames to the column order of the feed"
            )
        cells = self._split(line)
        if len(cells) < self._width:
            raise RecordError(MALFORMED, f"expected at least {self._width} fields, got {len(cells)}")
        values = empty_values()
        null_values = self.null_values
        for index, position, converter, field in plan:
            text = cells[index].strip()
            if text not in null_values:
                values[position] = converter(text, field)
        return build_record(values)


def _index_names(names: Sequence[str]) -> dict[str, int]:
    index_of: dict[str, int] = {}
    for index, name in enumerate(names):
        index_of.setdefault(name, index)
    return index_of


def _layout_from(
    preset: str | None,
    columns: Mapping[str, str | int] | None,
    converters: Mapping[str, str] | None,
    fieldnames: Sequence[str] | None,
) -> CsvLayout:
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown csv preset {preset!r}; allowed: {', '.join(sorted(PRESETS))}")
    base = PRESETS[preset] if preset is not None else CsvLayout(columns={}, converters={})
    merged_columns = {**base.columns, **(columns or {})}
    merged_converters = {**base.converters, **(converters or {})}
    check_field_names(merged_columns, "csv columns")
    check_required(merged_columns, "csv columns", hint=(
        f"choose a preset ({'|'.join(sorted(PRESETS))}; --preset or input.decoder_options.preset) "
        "or map the fields to columns in input.decoder_options.columns, "
        'for example {"ts_ns": "time", "src": "source"}'
    ))
    for field, column in merged_columns.items():
        if isinstance(column, bool) or not isinstance(column, (str, int)) or (
            isinstance(column, int) and column < 0
        ):
            raise ConfigError(f"csv column for {field} must be a name or a 0-based index, got {column!r}")
    names = tuple(fieldnames) if fieldnames is not None else base.fieldnames
    return CsvLayout(columns=merged_columns, converters=merged_converters, fieldnames=names)


class DarkvecCsvDecoder(CsvDecoder):
    """Decoder of the DarkVec raw trace CSV, columns read from its header.

    Anonymised address tokens such as ``src_ipaddr12`` are kept by default.
    Headerless input (Kafka messages) uses the standard column order.
    """

    format = "darkvec-csv"

    def __init__(
        self, *, allow_tokens: bool = True, address_cache_entries: int = 262_144,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(
            columns=DARKVEC_LAYOUT.columns,
            converters=DARKVEC_LAYOUT.converters,
            fieldnames=DARKVEC_LAYOUT.fieldnames,
            allow_tokens=allow_tokens,
            address_cache_entries=address_cache_entries,
            max_line_bytes=max_line_bytes,
            require_all_columns=False,
        )

    def bind_header(self, header: str, path: Path) -> TextDecoder | None:
        names = [name.strip() for name in self._split(header)]
        if "ts" not in names or "src_ip" not in names:
            # The first line is data: read it in the standard column order.
            return None
        # The leading index column has no name in pandas output (or "0").
        return super().bind_header(header, path)
