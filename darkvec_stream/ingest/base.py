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
import zlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, NamedTuple

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest.errors import LINE_TOO_LONG, MALFORMED, TRUNCATED, RecordError
from darkvec_stream.ingest.record import Origin, Record, Rejected

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# Starts of binary files that users pass to a text format by mistake, with
# the advice the error gives. gzip is listed because a file whose gzip
# content is gzip again reaches the text decoder still compressed.
_USE_PCAP = "use --format pcap (input.format: pcap)"
BINARY_MAGICS = (
    (b"\xd4\xc3\xb2\xa1", "pcap", _USE_PCAP),
    (b"\xa1\xb2\xc3\xd4", "pcap", _USE_PCAP),
    (b"\x4d\x3c\xb2\xa1", "pcap", _USE_PCAP),
    (b"\xa1\xb2\x3c\x4d", "pcap", _USE_PCAP),
    (b"\x0a\x0d\x0d\x0a", "pcapng", _USE_PCAP),
    (GZIP_MAGIC, "gzip inside gzip", "decompress it once (gunzip) and read the result"),
)
# Exceptions that a cut or corrupt gzip stream raises while it is read.
GZIP_DAMAGE = (EOFError, zlib.error, gzip.BadGzipFile)
BLOCK_BYTES = 1 << 20
# The longest line a text decoder reads, in bytes. Real records are a few
# hundred bytes, so this bounds memory for a broken or hostile input
# without rejecting any genuine record.
MAX_LINE_BYTES = 64 * 1024

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


def concat_batches(batches: Iterable[OrderedBatch]) -> OrderedBatch:
    """Join ordered batches into one, shifting each reject position."""
    records: list[Record] = []
    rejects: list[Rejected] = []
    positions: list[int] = []
    for batch_records, batch_rejects, batch_positions in batches:
        positions.extend(position + len(records) for position in batch_positions)
        records.extend(batch_records)
        rejects.extend(batch_rejects)
    return records, rejects, positions


def check_max_line_bytes(max_line_bytes: int) -> int:
    """Return ``max_line_bytes`` when it is a usable line cap, else raise ``ConfigError``."""
    if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, int) or max_line_bytes < 1:
        raise ConfigError(
            f"decoder option max_line_bytes must be a positive integer number of bytes, got {max_line_bytes!r}"
        )
    return max_line_bytes


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
    max_line_bytes = MAX_LINE_BYTES

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
        if len(payload) <= self.max_line_bytes:
            return self.decode_block(payload, origin, 1)
        # A large message may contain an over-long line: cut it as a file is
        # cut, so no line longer than the cap is ever decoded to text.
        splitter = LineSplitter(self.max_line_bytes)
        blocks = [*splitter.feed(payload), *splitter.finish()]
        return concat_batches(self._decode_line_blocks(blocks, origin, 1))

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
        first_line = 1
        header_pending = self.has_header
        blocks = iter_line_blocks(path, max_line_bytes=self.max_line_bytes)
        for block in blocks:
            if header_pending and block.problem is None:
                header_pending, block, decoder, first_line = self._take_header(block, path, first_line)
            elif header_pending and block.problem[0] == LINE_TOO_LONG:
                raise InputError(f"{path}: the header line is too long; {block.problem[1]}")
            if block.lines > 0:
                yield from decoder._decode_line_blocks([block], Origin(source=str(path)), first_line)
                first_line += block.lines

    def _take_header(
        self, block: LineBlock, path: Path, first_line: int
    ) -> tuple[bool, LineBlock, TextDecoder, int]:
        """Bind the first non-blank line of ``block`` as the file's header.

        Returns whether the header is still pending, the rest of the block,
        the decoder for the data lines and the number of the next line.
        """
        data, lines = block.data, block.lines
        while lines > 0:
            line, _, rest = data.partition(b"\n")
            if line.strip():
                bound = self._bind_header_bytes(line, path)
                if bound is None:
                    # The first line is data, so it stays in the block.
                    return False, LineBlock(data, lines), self, first_line
                return False, LineBlock(rest, lines - 1), bound, first_line + 1
            data, lines, first_line = rest, lines - 1, first_line + 1
        return True, LineBlock(b"", 0), self, first_line

    def _decode_line_blocks(self, blocks: Iterable[LineBlock], origin: Origin, first_line: int) -> Iterator[OrderedBatch]:
        for block in blocks:
            if block.problem is None:
                yield self.decode_block(block.data, origin, first_line)
            else:
                reason, detail = block.problem
                yield [], [Rejected(reason, detail, block.data, origin._replace(line=first_line))], [0]
            first_line += block.lines

    def _bind_header_bytes(self, header: bytes, path: Path) -> TextDecoder | None:
        try:
            text = header.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise InputError(
                f"{path}: the header line is not valid UTF-8, so this is not a {self.format} file; "
                "check --format (input.format) and the file's encoding"
            ) from None
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


class LineBlock(NamedTuple):
    """Whole lines read from a file, or one line that is rejected as a whole.

    ``data`` contains ``lines`` lines joined by ``\\n``, without the final
    line end. When ``problem`` is set, ``data`` is a sample of one rejected
    line and ``problem`` contains its reject reason and detail.
    """

    data: bytes
    lines: int
    problem: tuple[str, str] | None = None


class LineSplitter:
    """Cut a byte stream into blocks of whole lines, rejecting over-long lines.

    Memory stays bounded by the chunk size plus ``max_line_bytes``: a line
    longer than that is skipped as it streams past, and only its first
    ``max_line_bytes`` bytes are kept as a sample for the dead letter.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self.lines_out = 0
        self._carry = b""
        self._long_sample: bytes | None = None
        self._long_bytes = 0

    def feed(self, chunk: bytes) -> Iterator[LineBlock]:
        """Yield the complete lines that ``chunk`` ends, keeping the unfinished tail."""
        if self._long_sample is not None:
            line_end = chunk.find(b"\n")
            if line_end < 0:
                self._long_bytes += len(chunk)
                return
            self._long_bytes += line_end
            yield self._take_long_line()
            chunk = chunk[line_end + 1:]
        yield from self._split(self._carry + chunk)

    def finish(self) -> Iterator[LineBlock]:
        """Yield the last line when the stream ends without a line end."""
        if self._long_sample is not None:
            yield self._take_long_line()
        elif self._carry:
            carry, self._carry = self._carry, b""
            yield self._count(LineBlock(carry, 1))

    def take_partial_line(self) -> bytes:
        """Remove and return the unfinished line (a sample of it when over-long)."""
        if self._long_sample is not None:
            partial, self._long_sample = self._long_sample, None
        else:
            partial, self._carry = self._carry, b""
        return partial

    def _split(self, data: bytes) -> Iterator[LineBlock]:
        # Each step looks for the last line end within max_line_bytes + 1
        # bytes of the current line start: the lines before it are all short
        # enough, so a 1 MiB chunk needs a handful of rfind calls, not one
        # call per line.
        window_bytes = self.max_line_bytes + 1
        block_start = position = 0
        while True:
            window_end = position + window_bytes
            if window_end > len(data):
                last_end = data.rfind(b"\n", position)
                if last_end >= 0:
                    position = last_end + 1
                break
            last_end = data.rfind(b"\n", position, window_end)
            if last_end >= 0:
                position = last_end + 1
                continue
            if position > block_start:
                yield self._whole_lines(data[block_start:position - 1])
            line_end = data.find(b"\n", window_end)
            self._long_sample = data[position:position + self.max_line_bytes]
            if line_end < 0:
                self._long_bytes = len(data) - position
                self._carry = b""
                return
            self._long_bytes = line_end - position
            yield self._take_long_line()
            block_start = position = line_end + 1
        if position > block_start:
            yield self._whole_lines(data[block_start:position - 1])
        self._carry = data[position:]

    def _whole_lines(self, block: bytes) -> LineBlock:
        return self._count(LineBlock(block, block.count(b"\n") + 1))

    def _take_long_line(self) -> LineBlock:
        sample = self._long_sample or b""
        detail = (f"line of {self._long_bytes} bytes is longer than the maximum of "
                  f"{self.max_line_bytes} bytes (decoder option max_line_bytes)")
        self._long_sample, self._long_bytes = None, 0
        return self._count(LineBlock(sample, 1, (LINE_TOO_LONG, detail)))

    def _count(self, block: LineBlock) -> LineBlock:
        self.lines_out += block.lines
        return block


def iter_line_blocks(
    path: Path, block_bytes: int = BLOCK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[LineBlock]:
    """Yield blocks of whole lines, each over-long line as its own rejected block.

    A UTF-8 byte order mark at the start of the file is removed. A final
    line without a line end is included. A gzip stream that is cut short or
    corrupt ends the file with one ``truncated`` block for the unfinished
    line, after every whole line read before the damage.
    """
    splitter = LineSplitter(max_line_bytes)
    with open_binary(path) as handle:
        try:
            start = handle.read(4)
            check_text_start(start, path)
            yield from splitter.feed(start[len(UTF8_BOM):] if start.startswith(UTF8_BOM) else start)
            for chunk in _read_chunks(handle, block_bytes):
                yield from splitter.feed(chunk)
        except GZIP_DAMAGE as error:
            yield _damaged_gzip_block(path, splitter, error)
            return
    yield from splitter.finish()


def check_text_start(start: bytes, path: Path) -> None:
    """Raise ``InputError`` when a file for a text format starts like a binary format."""
    for magic, kind, advice in BINARY_MAGICS:
        if start.startswith(magic):
            raise InputError(
                f"{path}: this looks like a {kind} file (magic bytes {start.hex()}), not text; {advice}"
            )


def _read_chunks(handle: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Yield chunks of about ``block_bytes``, then re-raise a gzip failure.

    ``GzipFile.read(n)`` drops everything it decompressed when the stream
    breaks, so the chunk is built from ``read1`` pieces and what was
    decompressed before the damage is still yielded.
    """
    while True:
        pieces: list[bytes] = []
        size = 0
        try:
            while size < block_bytes:
                piece = handle.read1(block_bytes - size)  # type: ignore[attr-defined]
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
        except GZIP_DAMAGE:
            yield b"".join(pieces)
            raise
        if not pieces:
            return
        yield b"".join(pieces)


def _damaged_gzip_block(path: Path, splitter: LineSplitter, error: Exception) -> LineBlock:
    partial = splitter.take_partial_line()
    detail = (f"gzip stream is truncated or corrupt after {splitter.lines_out} lines "
              f"({type(error).__name__}: {error}); the rest of the file was not read")
    # Logged, not raised: the lines read before the damage still count, and
    # this reject keeps accepted + rejected equal to the lines read.
    logger.warning("%s: %s", path, detail)
    return LineBlock(partial, 1, (TRUNCATED, detail))
