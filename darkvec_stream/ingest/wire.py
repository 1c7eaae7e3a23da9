"""record-csv: the project's own wire format, encoder and decoder.

``replay`` writes records into Kafka in this format and the daemon reads
them back, so both directions are tuned for speed. One record per line,
fields in ``Record`` order, an empty string for null, ``mirai`` as 1, 0 or
empty. Files start with ``HEADER``; Kafka messages never carry it. The
decoder validates every field because a topic may hold anything; it does
not reinterpret values (no ``443.0``, no protocol names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from darkvec_stream.ingest import columnar
from darkvec_stream.ingest.address import AddressCache
from darkvec_stream.ingest.base import MAX_LINE_BYTES, OrderedBatch, TextDecoder, check_max_line_bytes, make_rejected
from darkvec_stream.ingest.errors import (
    BAD_ADDRESS,
    BAD_FIELD,
    BAD_PORT,
    BAD_TIMESTAMP,
    MALFORMED,
    RecordError,
)
from darkvec_stream.ingest.fields import MAX_TS_NS
from darkvec_stream.ingest.record import Origin, Record, Rejected

FIELDS = Record._fields
HEADER = ",".join(FIELDS)
HEADER_BYTES = HEADER.encode("ascii")

_MAX_UINT32 = 2**32 - 1
_MAX_UINT63 = 2**63 - 1
_new_record = tuple.__new__

# Upper bound and reject reason of each optional integer field, by position.
_INTEGER_LIMITS: tuple[tuple[int, str, int, str], ...] = (
    (3, "src_port", 65_535, BAD_PORT),
    (4, "dst_port", 65_535, BAD_PORT),
    (5, "proto", 255, BAD_FIELD),
    (6, "length", _MAX_UINT63, BAD_FIELD),
    (7, "tcp_flags", 0xFFF, BAD_FIELD),
    (8, "ttl", 255, BAD_FIELD),
    (9, "tcp_seq", _MAX_UINT32, BAD_FIELD),
)
_MIRAI_TEXT = {None: "", True: "1", False: "0"}
_MIRAI_VALUE = {"": None, "1": True, "0": False}


def _text(value: int | str | None) -> str:
    return "" if value is None else str(value)


def encode_line(record: Record) -> str:
    """Encode one record as a line of text without the line end."""
    ts_ns, src, dst, src_port, dst_port, proto, length, flags, ttl, seq, packets, mirai = record
    return (
        f"{ts_ns},{src},{_text(dst)},{_text(src_port)},{_text(dst_port)},{_text(proto)},"
        f"{_text(length)},{_text(flags)},{_text(ttl)},{_text(seq)},{packets},{_MIRAI_TEXT[mirai]}"
    )


def encode_record(record: Record) -> bytes:
    """Encode one record as UTF-8 bytes without a line end."""
    return encode_line(record).encode("utf-8")


def encode_records(records: Iterable[Record]) -> bytes:
    """Encode records as newline-separated lines, no trailing newline."""
    return "\n".join(map(encode_line, records)).encode("utf-8")


def write_file(path: Path, records: Iterable[Record], batch_records: int = 65_536) -> int:
    """Write a record-csv file with its header line; return the record count."""
    count = 0
    batch: list[str] = []
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(HEADER + "\n")
        for record in records:
            batch.append(encode_line(record))
            if len(batch) >= batch_records:
                handle.write("\n".join(batch) + "\n")
                count += len(batch)
                batch.clear()
        if batch:
            handle.write("\n".join(batch) + "\n")
            count += len(batch)
    return count


class WireDecoder(TextDecoder):
    """Decoder of record-csv lines.

    Addresses are checked and canonicalised through a bounded cache, and
    opaque tokens are accepted by default because upstream decoders admit
    them for anonymised traces and sensor names (``allow_tokens``).
    """

    format = "record-csv"
    has_header = True

    def __init__(
        self,
        *,
        allow_tokens: bool = True,
        address_cache_entries: int = 262_144,
        columnar: bool = True,
        columnar_min_bytes: int = 65_536,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self.allow_tokens = allow_tokens
        self.columnar = columnar
        self.columnar_min_bytes = columnar_min_bytes
        self._addresses = AddressCache(allow_token=allow_tokens, max_entries=address_cache_entries)

    def decode_block(self, block: bytes, origin: Origin, first_line: int) -> OrderedBatch:
        # pyarrow's fixed cost per call only pays off on large blocks.
        if self.columnar and len(block) >= self.columnar_min_bytes:
            records = columnar.decode_block(block, self._addresses)
            if records is not None:
                return records, [], []
        return super().decode_block(block, origin, first_line)

    def bind_header(self, header: str, path: Path) -> TextDecoder | None:
        # A file without the header line is read as data from the first line.
        return self if header == HEADER else None

    def decode_line(self, line: str) -> Record:
        return self._decode_fields(line.split(","))

    def decode_lines(self, lines: Iterable[str], origin: Origin, first_line: int) -> OrderedBatch:
        records: list[Record] = []
        rejects: list[Rejected] = []
        positions: list[int] = []
        append = records.append
        cache = self._addresses._canonical
        for number, line in enumerate(lines, first_line):
            fields = line.split(",")
            # Fast path for well-formed lines with cached addresses; anything
            # unusual goes to _decode_fields, which finds the exact reason.
            try:
                ts, src, dst, sport, dport, proto, length, flags, ttl, seq, packets, mirai = fields
                # int() also takes "+1", " 1", "1_0" and non-ASCII digits,
                # which the strict path rejects: check the digits first.
                digits = ts + sport + dport + proto + length + flags + ttl + seq + packets
                if not (digits.isdigit() and digits.isascii()):
                    raise ValueError(digits)
                record = _new_record(Record, (
                    int(ts), cache[src], cache[dst] if dst else None,
                    int(sport) if sport else None, int(dport) if dport else None,
                    int(proto) if proto else None, int(length) if length else None,
                    int(flags) if flags else None, int(ttl) if ttl else None,
                    int(seq) if seq else None, int(packets), _MIRAI_VALUE[mirai],
                ))
                if _in_range(record):
                    append(record)
                    continue
            except (ValueError, KeyError):
                pass
            if not line or line.isspace():
                continue
            try:
                append(self._decode_fields(fields))
            except RecordError as error:
                rejects.append(make_rejected(error, line, origin, number))
                positions.append(len(records))
        return records, rejects, positions

    def _decode_fields(self, fields: list[str]) -> Record:
        if len(fields) != len(FIELDS):
            raise RecordError(MALFORMED, f"expected {len(FIELDS)} comma-separated fields, got {len(fields)}")
        ts_ns = _parse_uint(fields[0], "ts_ns", MAX_TS_NS, BAD_TIMESTAMP)
        if not fields[1]:
            raise RecordError(BAD_ADDRESS, "src: missing sender address")
        src = self._addresses.canonical(fields[1])
        dst = self._addresses.canonical(fields[2]) if fields[2] else None
        values: list[int | None] = [None] * 7
        for index, name, maximum, reason in _INTEGER_LIMITS:
            text = fields[index]
            values[index - 3] = _parse_uint(text, name, maximum, reason) if text else None
        packets = _parse_uint(fields[10], "packets", _MAX_UINT63, BAD_FIELD)
        if fields[11] not in _MIRAI_VALUE:
            raise RecordError(BAD_FIELD, f"mirai: invalid flag {fields[11]!r} (expected 1, 0 or empty)")
        return _new_record(Record, (ts_ns, src, dst, *values, packets, _MIRAI_VALUE[fields[11]]))


def _in_range(record: Record) -> bool:
    """Check the upper bounds of a record whose integers are plain digits."""
    ts_ns, _, _, sport, dport, proto, length, flags, ttl, seq, packets, _ = record
    return (
        ts_ns <= MAX_TS_NS
        and packets <= _MAX_UINT63
        and (length is None or length <= _MAX_UINT63)
        and (sport is None or sport <= 65_535)
        and (dport is None or dport <= 65_535)
        and (proto is None or proto <= 255)
        and (flags is None or flags <= 0xFFF)
        and (ttl is None or ttl <= 255)
        and (seq is None or seq <= _MAX_UINT32)
    )


def _parse_uint(text: str, name: str, maximum: int, reason: str) -> int:
    # Only plain ASCII digits: int() would also take "+1", " 1", "1_0" and
    # non-ASCII digits, which no encoder of this format writes.
    if not (text.isdigit() and text.isascii()):
        raise RecordError(reason, f"{name}: invalid integer {text!r}")
    value = int(text)
    if value > maximum:
        raise RecordError(reason, f"{name}: value {text} above {maximum}")
    return value

