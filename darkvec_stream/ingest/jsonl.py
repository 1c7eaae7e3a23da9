"""JSON lines decoder with a field map, and presets for flow exporters.

Each line is one JSON object. A field map gives, for each ``Record`` field,
one path or a list of alternative paths (the first present non-null value
wins). A dotted path such as ``id.orig_h`` is first looked up as a literal
key, because Zeek writes flat keys with dots, and then through nested
objects. This module does not read JSON arrays or multi-line documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import orjson

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest.base import MAX_LINE_BYTES, TextDecoder, check_max_line_bytes
from darkvec_stream.ingest.errors import MALFORMED, RecordError
from darkvec_stream.ingest.fieldmap import (
    FIELD_POSITIONS,
    Converter,
    build_converters,
    build_record,
    check_field_names,
    check_required,
    empty_values,
)
from darkvec_stream.ingest.record import Record

FieldPaths = str | Sequence[str]


@dataclass(frozen=True)
class JsonLayout:
    """A named field map: JSON paths and converter names per Record field."""

    paths: Mapping[str, FieldPaths]
    converters: Mapping[str, str]


PRESETS: dict[str, JsonLayout] = {
    # goflow2 v2 JSON formatter (snake_case keys). Flow start time first,
    # the collector's receive time when the exporter sent no start time.
    "goflow2": JsonLayout(
        paths={
            "ts_ns": ["time_flow_start_ns", "time_received_ns"],
            "src": "src_addr", "dst": "dst_addr",
            "src_port": "src_port", "dst_port": "dst_port", "proto": "proto",
            "packets": "packets", "length": "bytes", "tcp_flags": "tcp_flags", "ttl": "ip_ttl",
        },
        converters={"ts_ns": "epoch_ns"},
    ),
    # pmacct print/kafka JSON; timestamps are text unless the collector
    # sets timestamps_since_epoch, so ``auto`` reads both.
    "pmacct": JsonLayout(
        paths={
            "ts_ns": ["timestamp_start", "stamp_inserted", "timestamp_arrival"],
            "src": "ip_src", "dst": "ip_dst",
            "src_port": "port_src", "dst_port": "port_dst", "proto": "ip_proto",
            "packets": "packets", "length": "bytes", "tcp_flags": "tcp_flags",
        },
        converters={"ts_ns": "auto"},
    ),
    # Zeek conn.log written by the JSON writer: flat keys with dots.
    "zeek-json": JsonLayout(
        paths={
            "ts_ns": "ts", "src": "id.orig_h", "dst": "id.resp_h",
            "src_port": "id.orig_p", "dst_port": "id.resp_p", "proto": "proto",
            "packets": "orig_pkts", "length": "orig_ip_bytes",
        },
        converters={"ts_ns": "auto"},
    ),
}

_MISSING = object()


class JsonlDecoder(TextDecoder):
    """Decoder of JSON lines with a field map or a named preset.

    ``fields`` and ``converters`` override the preset's entries. A
    timestamp of 0 counts as absent when another path is listed, because
    exporters write 0 for a time they do not know.
    """

    format = "jsonl"

    def __init__(
        self,
        *,
        preset: str | None = None,
        fields: Mapping[str, FieldPaths] | None = None,
        converters: Mapping[str, str] | None = None,
        allow_tokens: bool = False,
        address_cache_entries: int = 262_144,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        if preset is not None and preset not in PRESETS:
            raise ConfigError(f"unknown jsonl preset {preset!r}; allowed: {', '.join(sorted(PRESETS))}")
        base = PRESETS[preset] if preset is not None else JsonLayout(paths={}, converters={})
        paths = {**base.paths, **(fields or {})}
        check_field_names(paths, "jsonl fields")
        check_required(paths, "jsonl fields", hint=(
            f"choose a preset ({'|'.join(sorted(PRESETS))}; --preset or input.decoder_options.preset) "
            "or map the fields to JSON paths in input.decoder_options.fields, "
            'for example {"ts_ns": "time", "src": "source.ip"}'
        ))
        self._paths = {field: _path_list(field, value) for field, value in paths.items()}
        self._converters: dict[str, Converter] = build_converters(
            {**base.converters, **(converters or {})}, list(paths),
            allow_tokens=allow_tokens, address_cache_entries=address_cache_entries,
        )
        self._plan = [
            (FIELD_POSITIONS[field], field, self._paths[field], self._converters[field]) for field in paths
        ]

    def decode_line(self, line: str) -> Record:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise RecordError(MALFORMED, f"invalid JSON ({error})") from None
        if not isinstance(document, dict):
            raise RecordError(MALFORMED, f"expected a JSON object, got {type(document).__name__}")
        values = empty_values()
        for position, field, paths, converter in self._plan:
            value = _first_value(document, paths, position == 0)
            if value is not _MISSING:
                values[position] = converter(value, field)  # type: ignore[arg-type]
        return build_record(values)


def _path_list(field: str, value: FieldPaths) -> tuple[str, ...]:
    paths = (value,) if isinstance(value, str) else tuple(value)
    if not paths or not all(isinstance(path, str) and path for path in paths):
        raise ConfigError(f"jsonl path for {field} must be a non-empty string or list of strings, got {value!r}")
    return paths


def _first_value(document: dict[str, object], paths: tuple[str, ...], zero_is_absent: bool) -> object:
    last = len(paths) - 1
    for position, path in enumerate(paths):
        value = _lookup(document, path)
        if value is None or value == "" or value is _MISSING:
            continue
        if zero_is_absent and value == 0 and position < last:
            continue
        return value
    return _MISSING


def _lookup(document: dict[str, object], path: str) -> object:
    value = document.get(path, _MISSING)
    if value is not _MISSING or "." not in path:
        return value
    node: object = document
    for key in path.split("."):
        if not isinstance(node, dict):
            return _MISSING
        node = node.get(key, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node
