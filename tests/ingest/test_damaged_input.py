"""Damaged and hostile input: cut gzip streams, over-long lines, corrupt pcap lengths."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import dpkt
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest import get_decoder, read_file
from darkvec_stream.ingest.base import LineSplitter
from darkvec_stream.ingest.deadletter import RAW_MAX_BYTES, JsonlDeadLetter, rejected_to_json
from darkvec_stream.ingest.errors import LINE_TOO_LONG, REASONS, TRUNCATED
from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import HEADER, encode_record
from tests.ingest.test_pcap import ipv4_packet

PCAP_RAW_IP = 101
PRESET_OPTIONS = {"csv": {"preset": "marx-iptables"}, "jsonl": {"preset": "goflow2"}}


def wire_lines(count: int) -> list[bytes]:
    return [encode_record(Record(1_700_000_000 * 10**9 + index, f"192.0.2.{index % 250 + 1}")) for index in range(count)]


def wire_file_bytes(lines: list[bytes]) -> bytes:
    return HEADER.encode() + b"\n" + b"".join(line + b"\n" for line in lines)


def split_items(items: list[Record | Rejected]) -> tuple[list[Record], list[Rejected]]:
    return ([item for item in items if isinstance(item, Record)],
            [item for item in items if isinstance(item, Rejected)])


def test_truncated_gzip_keeps_lines_read(tmp_path: Path) -> None:
    lines = wire_lines(20_000)
    compressed = gzip.compress(wire_file_bytes(lines))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(compressed[: len(compressed) // 2])

    records, rejects = split_items(list(read_file(path, "record-csv")))

    assert 0 < len(records) < len(lines)
    assert [encode_record(record) for record in records] == lines[: len(records)]
    assert len(rejects) == 1
    assert rejects[0].reason == TRUNCATED
    assert "gzip stream is truncated or corrupt" in rejects[0].detail
    assert f"after {len(records) + 1} lines" in rejects[0].detail  # the header line counts as read
    assert rejects[0].origin.line == len(records) + 2


def test_corrupt_gzip_header_is_one_reject(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv.gz"
    path.write_bytes(b"\x1f\x8bGARBAGE and more garbage")

    items = list(read_file(path, "record-csv"))

    assert len(items) == 1
    assert isinstance(items[0], Rejected)
    assert items[0].reason == TRUNCATED
    assert "BadGzipFile" in items[0].detail


def test_truncated_gzip_pcap_keeps_packets(tmp_path: Path) -> None:
    buffer = tmp_path / "plain.pcap"
    with open(buffer, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, linktype=PCAP_RAW_IP, snaplen=65535)
        for _ in range(3000):
            writer.writepkt(ipv4_packet(), ts=1_700_000_000.5)
    compressed = gzip.compress(buffer.read_bytes())
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(compressed[: len(compressed) * 2 // 3])

    records, rejects = split_items(list(read_file(path, "pcap")))

    assert 0 < len(records) < 3000
    assert rejects[-1].reason == TRUNCATED
    assert "gzip stream is truncated or corrupt" in rejects[-1].detail


def test_long_line_rejected_between_neighbours(tmp_path: Path) -> None:
    lines = wire_lines(3)
    huge = b"1," + b"9" * 1_000_000
    path = tmp_path / "huge.csv"
    path.write_bytes(wire_file_bytes([lines[0], huge, lines[1], lines[2]]))

    items = list(read_file(path, "record-csv"))

    assert [encode_record(item) for item in items if isinstance(item, Record)] == lines
    rejected = items[1]
    assert isinstance(rejected, Rejected)
    assert rejected.reason == LINE_TOO_LONG
    assert rejected.origin.line == 3
    assert "line of 1000002 bytes" in rejected.detail
    assert len(rejected.raw) == 64 * 1024


def test_long_final_line_without_line_end(tmp_path: Path) -> None:
    path = tmp_path / "tail.csv"
    path.write_bytes(wire_file_bytes(wire_lines(1)) + b"x" * 300_000)

    records, rejects = split_items(list(read_file(path, "record-csv")))

    assert len(records) == 1
    assert [reject.reason for reject in rejects] == [LINE_TOO_LONG]
    assert "line of 300000 bytes" in rejects[0].detail


def test_long_line_memory_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "50mb.csv"
    with open(path, "wb") as handle:
        handle.write(wire_file_bytes(wire_lines(2)))
        for _ in range(50):
            handle.write(b"7" * 1_000_000)
        handle.write(b"\n" + wire_lines(1)[0] + b"\n")

    tracemalloc.start()
    try:
        items = list(read_file(path, "record-csv"))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [type(item) for item in items] == [Record, Record, Rejected, Record]
    # One 1 MiB read block, its copy with the carried tail, and the sample.
    assert peak_bytes < 8 * 1024 * 1024


def test_long_line_in_message_is_rejected() -> None:
    lines = wire_lines(2)
    payload = lines[0] + b"\n" + b"5" * 20_000_000 + b"\n" + lines[1]
    decoder = get_decoder("record-csv")

    tracemalloc.start()
    try:
        records, rejects = decoder.decode_message(payload, Origin("topic", 0, 9))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [encode_record(record) for record in records] == lines
    assert [reject.reason for reject in rejects] == [LINE_TOO_LONG]
    assert rejects[0].origin.line == 2
    assert peak_bytes < 4 * 1024 * 1024


@pytest.mark.parametrize("format", ["record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn"])
def test_max_line_bytes_option(format: str) -> None:
    options = PRESET_OPTIONS.get(format, {})
    decoder = get_decoder(format, max_line_bytes=10, **options)
    payload = b"0123456789abcdef\n" * 2

    _, rejects = decoder.decode_message(payload, Origin("t"))

    assert [reject.reason for reject in rejects] == [LINE_TOO_LONG, LINE_TOO_LONG]
    with pytest.raises(ConfigError, match="max_line_bytes"):
        get_decoder(format, max_line_bytes=0, **options)


def test_line_too_long_is_a_known_reason() -> None:
    assert LINE_TOO_LONG in REASONS


def reference_split(data: bytes, max_line_bytes: int) -> list[tuple[bytes, bool]]:
    """Each line of ``data`` and whether it is too long, the obvious way."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(line[:max_line_bytes], len(line) > max_line_bytes) for line in lines]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda line: line.replace(b"\n", b"")), max_size=30),
    final_newline=st.booleans(),
    max_line_bytes=st.integers(1, 25),
    chunk_bytes=st.integers(1, 50),
)
def test_splitter_matches_plain_split(
    lines: list[bytes], final_newline: bool, max_line_bytes: int, chunk_bytes: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    splitter = LineSplitter(max_line_bytes)
    blocks = []
    for start in range(0, len(data), chunk_bytes):
        blocks.extend(splitter.feed(data[start:start + chunk_bytes]))
    blocks.extend(splitter.finish())

    produced: list[tuple[bytes, bool]] = []
    for block in blocks:
        if block.problem is None:
            block_lines = block.data.split(b"\n")
            assert len(block_lines) == block.lines
            produced.extend((line, False) for line in block_lines)
        else:
            assert block.lines == 1
            produced.append((block.data, True))

    assert produced == reference_split(data, max_line_bytes)
    assert splitter.lines_out == len(produced)


def test_deadletter_caps_raw_bytes(tmp_path: Path) -> None:
    huge = Rejected(LINE_TOO_LONG, "too long", "é".encode() * 30_000, Origin("f", line=4))
    small = Rejected(TRUNCATED, "cut", b"abc", Origin("f", line=5))
    sink = JsonlDeadLetter(tmp_path / "dead.jsonl")
    sink.put(huge)
    sink.put(small)
    sink.close()

    documents = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]

    assert documents[0]["raw_truncated"] is True
    assert documents[0]["raw_bytes"] == 60_000
    assert documents[0]["raw_encoding"] == "utf-8"
    assert documents[0]["raw"] == "é" * (RAW_MAX_BYTES // 2)
    assert documents[1]["raw_truncated"] is False
    assert documents[1]["raw_bytes"] == 3
    assert len((tmp_path / "dead.jsonl").read_bytes()) < 2 * RAW_MAX_BYTES


def test_deadletter_cut_inside_character() -> None:
    raw = b"a" + "é".encode() * 5000

    document = rejected_to_json(Rejected(LINE_TOO_LONG, "x", raw, Origin("f")))

    assert document["raw_encoding"] == "utf-8"
    assert document["raw"] == "a" + "é" * ((RAW_MAX_BYTES - 1) // 2)


def pcap_bytes(records: list[tuple[int, bytes]], snap_length: int = 65535) -> bytes:
    """A little-endian raw-IP pcap whose record headers claim the given captured lengths."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap_length, PCAP_RAW_IP)
    body = b"".join(struct.pack("<IIII", 1_700_000_000, 0, length, len(frame)) + frame for length, frame in records)
    return header + body


def test_pcap_huge_captured_length_stops(tmp_path: Path) -> None:
    frame = ipv4_packet()
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(pcap_bytes([(len(frame), frame), (0xFFFFFFF0, frame), (len(frame), frame)]))

    records, rejects = split_items(list(read_file(path, "pcap")))

    assert len(records) == 1
    assert len(rejects) == 1
    assert rejects[0].reason == "malformed"
    assert "4294967280" in rejects[0].detail
    assert rejects[0].origin.line == 2


def test_pcap_length_above_snap_length_continues(tmp_path: Path) -> None:
    frame = ipv4_packet()
    path = tmp_path / "snap.pcap"
    path.write_bytes(pcap_bytes([(len(frame), frame), (len(frame), frame)], snap_length=len(frame) - 1))

    records, rejects = split_items(list(read_file(path, "pcap")))

    assert records == []
    assert [reject.reason for reject in rejects] == ["malformed", "malformed"]
    assert "snap length" in rejects[0].detail


def test_pcapng_huge_block_length_stops(tmp_path: Path) -> None:
    section = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    interface = struct.pack("<IIHHI", 1, 20, PCAP_RAW_IP, 0, 0) + struct.pack("<I", 20)
    corrupt = struct.pack("<II", 6, 0xFFFFFFF0) + b"\x00" * 32
    path = tmp_path / "corrupt.pcapng"
    path.write_bytes(section + interface + corrupt)

    items = list(read_file(path, "pcap"))

    assert len(items) == 1
    assert isinstance(items[0], Rejected)
    assert items[0].reason == "malformed"
    assert "4294967280" in items[0].detail
