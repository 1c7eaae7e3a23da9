"""The decoder interface and the line loop shared by the text formats.

A decoder turns raw bytes (one Kafka message, or a block of a file) into
``Record`` values and ``Rejected`` values, and never raises for a bad
record. Text decoders only implement ``decode_line``; this module handles
blank lines, CRLF, a UTF-8 byte order mark, invalid UTF-8, line numbers and
file headers. Choosing a decoder by name lives in the package ``__init__``.
"""

from __future__ import annotations

import gc
import gzip
import logging
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from darkvec_stream.errors import InputError
from darkvec_stream.ingest.errors import MALFORMED, RecordError
from darkvec_stream.ingest.record import Origin, Record, Rejected

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 1 << 20

Batch = tuple[list[Record], list[Rejected]]

# A decoded block plus, for each reject, how many records precede it in the
# block: enough to merge the block back into file order without tagging
# every record.
OrderedBatch = tuple[list[Record], list[Rejected], list[int]]


class Decoder(ABC):
    """Decode raw input of one format into records and rejects."""

    format: str = ""

    def decode_message(self, payload: bytes, origin: Origin) -> Batch:
        """Decode one Kafka message: one record or newline-separated records."""
        records, rejects, _ = self.decode_payload(payload, origin)
        return records, rejects

    @abstractmethod
    def decode_payload(self, payload: bytes, origin: Origin) -> OrderedBatch:
        """Decode one message and note where each reject sits among the records."""

    @abstractmethod
    def read_ordered(self, path: Path) -> Iterator[OrderedBatch]:
        """Decode a whole file in order, one batch per block read."""

    def read_batches(self, path: Path) -> Iterator[Batch]:
        """Decode a whole file in order, one ``(records, rejects)`` pair per block."""
        for records, rejects, _ in self.read_ordered(path):
            yield records, rejects

    def read_file(self, path: Path) -> Iterator[Record | Rejected]:
        """Decode a whole file and yield records and rejects in file order."""
        for records, rejects, positions in self.read_ordered(path):
            if rejects:
                yield from merge_in_order(records, rejects, positions)
            else:
                yield from records


def merge_in_order(
    records: list[Record], rejects: list[Rejected], positions: list[int]
) -> Iterator[Record | Rejected]:
    """Interleave rejects with records at the positions noted while decoding."""
    next_record = 0
    for rejected, position in zip(rejects, positions):
        yield from records[next_record:position]
        next_record = max(next_record, position)
        yield rejected
    yield from records[next_record:]


class TextDecoder(Decoder):
    """Line-oriented decoder: one record per non-blank line.

    Subclasses implement ``decode_line`` and may override ``bind_header``
    (files that start with a header line) and ``directive`` (comment lines
    that configure the decoder, as in Zeek logs).
    """

    has_header = False

    @abstractmethod
    def decode_line(self, line: str) -> Record:
        """Decode one line without its line end, or raise ``RecordError``."""

    def bind_header(self, header: str, path: Path) -> TextDecoder | None:
        """Return a decoder for a file that starts with ``header``.

        Returns None when the first line is data, not a header.
        """
        return None

    def directive(self, line: str) -> bool:
        """Consume a non-record line such as a comment; True when consumed."""
        return False

    def decode_lines(self, lines: Iterable[str], origin: Origin, first_line: int) -> OrderedBatch:
        """Decode lines numbered from ``first_line``, skipping blank ones."""
        records: list[Record] = []
        rejects: list[Rejected] = []
        positions: list[int] = []
        decode_line = self.decode_line
        directive = self.directive
        for number, line in enumerate(lines, first_line):
            if not line or line.isspace() or directive(line):
                continue
            try:
                records.append(decode_line(line))
            except RecordError as error:
                rejects.append(make_rejected(error, line, origin, number))
                positions.append(len(records))
            except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as error:
                # A decoder gap on odd input must cost one record, not the feed.
                unexpected = RecordError(MALFORMED, f"cannot decode line ({type(error).__name__}: {error})")
                rejects.append(make_rejected(unexpected, line, origin, number))
                positions.append(len(records))
        return records, rejects, positions

    def decode_payload(self, payload: bytes, origin: Origin) -> OrderedBatch:
        if payload.startswith(UTF8_BOM):
            payload = payload[len(UTF8_BOM):]
        return self.decode_block(payload, origin, 1)

    def decode_block(self, block: bytes, origin: Origin, first_line: int) -> OrderedBatch:
        """Decode a block of whole lines, falling back per line on bad UTF-8."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return self._decode_block_per_line(block, origin, first_line)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        with gc_paused():
            return self.decode_lines(text.split("\n"), origin, first_line)

    def _decode_block_per_line(self, block: bytes, origin: Origin, first_line: int) -> OrderedBatch:
        records: list[Record] = []
        rejects: list[Rejected] = []
        positions: list[int] = []
        for number, raw_line in enumerate(block.split(b"\n"), first_line):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                detail = f"invalid UTF-8 at byte {error.start} of the line"
                rejects.append(Rejected(MALFORMED, detail, raw_line, origin._replace(line=number)))
                positions.append(len(records))
                continue
            line_records, line_rejects, _ = self.decode_lines([line.rstrip("\r")], origin, number)
            positions.extend(len(records) for _ in line_rejects)
            records.extend(line_records)
            rejects.extend(line_rejects)
        return records, rejects, positions

    def read_ordered(self, path: Path) -> Iterator[OrderedBatch]:
        decoder: TextDecoder = self
        origin = Origin(source=str(path))
        first_line = 1
        header_pending = self.has_header
        for block, block_lines in iter_line_blocks(path):
            while header_pending and block_lines > 0:
                line, _, rest = block.partition(b"\n")
                if line.strip():
                    header_pending = False
                    bound = self._bind_header_bytes(line, path)
                    if bound is None:
                        break
                    decoder = bound
                first_line += 1
                block_lines -= 1
                block = rest
            if block_lines > 0:
                yield decoder.decode_block(block, origin, first_line)
                first_line += block_lines

    def _bind_header_bytes(self, header: bytes, path: Path) -> TextDecoder | None:
        try:
            text = header.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise InputError(f"{path}: the header line is not valid UTF-8") from None
        return self.bind_header(text, path)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a block builds many small tuples.

    Records contain only ints and strings, so they form no cycles. Without
    the pause, collections triggered by the allocations themselves took most
    of the decoding time in ``bench.bench_ingest``.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def make_rejected(error: RecordError, line: str, origin: Origin, number: int) -> Rejected:
    """Build the ``Rejected`` value for one line of text."""
    return Rejected(error.reason, error.detail, line.encode("utf-8"), origin._replace(line=number))


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading, decompressing when it starts with the gzip magic."""
    try:
        handle: BinaryIO = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"input path is a directory, expected a file: {path}") from None
    except PermissionError:
        raise InputError(f"input file is not readable (permission denied): {path}") from None
    magic = handle.read(2)
    handle.seek(0)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def iter_line_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[bytes, int]]:
    """Yield blocks of whole lines and the number of lines each one spans.

    A UTF-8 byte order mark at the start of the file is removed. A final
    line without a line end is included.
    """
    with open_binary(path) as handle:
        carry = handle.read(len(UTF8_BOM))
        if carry == UTF8_BOM:
            carry = b""
        while True:
            chunk = handle.read(block_bytes)
            if not chunk:
                break
            chunk = carry + chunk
            cut = chunk.rfind(b"\n")
            if cut < 0:
                carry = chunk
                continue
            block, carry = chunk[:cut], chunk[cut + 1:]
            yield block, block.count(b"\n") + 1
        if carry:
            yield carry, carry.count(b"\n") + 1
