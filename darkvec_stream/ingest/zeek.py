"""Zeek ``conn.log`` in its tab-separated form, columns mapped by ``#fields``.

The header directives are honoured as Zeek writes them: ``#separator``
(escaped, as in ``\\x09``), ``#unset_field``, ``#empty_field``, ``#fields``
and ``#close``. Headerless input, such as a Kafka message holding only
data lines, is read in the default conn.log column order of Zeek 6. This
module reads only conn.log columns; other Zeek logs are out of scope.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Iterator

from darkvec_stream.errors import InputError
from darkvec_stream.ingest.base import MAX_LINE_BYTES, OrderedBatch, TextDecoder, check_max_line_bytes
from darkvec_stream.ingest.errors import MALFORMED, RecordError
from darkvec_stream.ingest.csvtext import PlanEntry
from darkvec_stream.ingest.fieldmap import FIELD_POSITIONS, Converter, build_converters, build_record, empty_values
from darkvec_stream.ingest.record import Origin, Record

# conn.log columns of Zeek 6.0 without optional packages.
DEFAULT_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
    "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
    "tunnel_parents",
)
COLUMNS = {
    "ts_ns": "ts", "src": "id.orig_h", "dst": "id.resp_h", "src_port": "id.orig_p",
    "dst_port": "id.resp_p", "proto": "proto", "packets": "orig_pkts", "length": "orig_ip_bytes",
}
_REQUIRED_COLUMNS = ("ts", "id.orig_h")
logger = logging.getLogger(__name__)
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


class ZeekConnDecoder(TextDecoder):
    """Decoder of Zeek's tab-separated conn.log.

    The originator is the sender. ``packets`` is ``orig_pkts`` and
    ``length`` is ``orig_ip_bytes``, the IP bytes the originator sent.
    """

    format = "zeek-conn"

    def __init__(
        self, *, allow_tokens: bool = False, address_cache_entries: int = 262_144,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self._converters: dict[str, Converter] = build_converters(
            {"ts_ns": "auto"}, list(COLUMNS),
            allow_tokens=allow_tokens, address_cache_entries=address_cache_entries,
        )
        self._file_path: Path | None = None
        self._headers_seen = 0
        self._reset_header()

    def _reset_header(self) -> None:
        self.separator = "\t"
        self.unset_field = "-"
        self.empty_field = "(empty)"
        self.closed = False
        self._plan, self._width = self._make_plan(DEFAULT_FIELDS)

    def _make_plan(self, names: tuple[str, ...]) -> tuple[list[PlanEntry], int]:
        index_of = {name: index for index, name in reversed(list(enumerate(names)))}
        missing = [name for name in _REQUIRED_COLUMNS if name not in index_of]
        if missing:
            raise InputError(
                f"#fields has no {', '.join(missing)} column; columns present: {', '.join(names)}"
            )
        plan = [
            (index_of[column], FIELD_POSITIONS[field], self._converters[field], field)
            for field, column in COLUMNS.items()
            if column in index_of
        ]
        return plan, max(entry[0] for entry in plan) + 1

    def _fresh(self, path: Path | None) -> ZeekConnDecoder:
        # Header state belongs to one file or one message, never to the
        # shared decoder that other messages use.
        fresh = copy.copy(self)
        fresh._file_path = path
        fresh._headers_seen = 0
        fresh._reset_header()
        return fresh

    def read_ordered(self, path: Path) -> Iterator[OrderedBatch]:
        yield from TextDecoder.read_ordered(self._fresh(path), path)

    def decode_payload(self, payload: bytes, origin: Origin) -> OrderedBatch:
        return TextDecoder.decode_payload(self._fresh(None), payload, origin)

    def directive(self, line: str) -> bool:
        if not line.startswith("#"):
            return False
        if line.startswith("#separator "):
            self.separator = _unescape(line[len("#separator "):])
            return True
        name, _, value = line.partition(self.separator)
        if name == "#unset_field":
            self.unset_field = value
        elif name == "#empty_field":
            self.empty_field = value
        elif name == "#fields":
            self._set_fields(tuple(value.split(self.separator)))
        elif name == "#close":
            self.closed = True
        return True

    def _set_fields(self, names: tuple[str, ...]) -> None:
        # Concatenated logs repeat the header block, so a later #fields
        # line replaces the column map for the lines that follow it.
        self.closed = False
        self._headers_seen += 1
        try:
            self._plan, self._width = self._make_plan(names)
        except InputError as error:
            if self._file_path is not None and self._headers_seen == 1:
                raise InputError(f"{self._file_path}: {error}") from None
            # A bad header later in a file, or in a message, costs the
            # lines that follow it, not the lines already read.
            if self._file_path is not None:
                logger.warning("%s: %s; data lines are rejected until the next usable #fields line",
                               self._file_path, error)
            self._plan, self._width = [], 0

    def decode_line(self, line: str) -> Record:
        if self.closed:
            raise RecordError(MALFORMED, "data line after #close without a new #fields header")
        if not self._plan:
            raise RecordError(MALFORMED, "no usable #fields header (ts and id.orig_h are required)")
        cells = line.split(self.separator)
        if len(cells) < self._width:
            raise RecordError(MALFORMED, f"expected at least {self._width} fields, got {len(cells)}")
        values = empty_values()
        missing = (self.unset_field, self.empty_field, "")
        for index, position, converter, field in self._plan:
            text = cells[index]
            if text not in missing:
                values[position] = converter(text, field)
        return build_record(values)
