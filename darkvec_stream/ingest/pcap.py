"""pcap and pcapng capture files, detected by their magic bytes.

Both containers are read here with ``struct`` so that timestamps stay
exact integer nanoseconds (pcap microsecond and nanosecond magic, pcapng
``if_tsresol`` and ``if_tsoffset``) and so that every interface of a pcapng
file keeps its own link type. Each packet goes to ``packets.decode_frame``.
A Kafka message for this format contains a whole capture (header included).
"""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

from darkvec_stream.errors import InputError
from darkvec_stream.ingest.base import GZIP_DAMAGE, Decoder, OrderedBatch, open_binary
from darkvec_stream.ingest.errors import BAD_TIMESTAMP, MALFORMED, TRUNCATED, RecordError
from darkvec_stream.ingest.packets import decode_frame
from darkvec_stream.ingest.record import Origin, Record, Rejected

PCAP_MAGIC_US_LE = b"\xd4\xc3\xb2\xa1"
PCAP_MAGIC_US_BE = b"\xa1\xb2\xc3\xd4"
PCAP_MAGIC_NS_LE = b"\x4d\x3c\xb2\xa1"
PCAP_MAGIC_NS_BE = b"\xa1\xb2\x3c\x4d"
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_PCAP_MAGICS = {
    PCAP_MAGIC_US_LE: ("<", 1000),
    PCAP_MAGIC_US_BE: (">", 1000),
    PCAP_MAGIC_NS_LE: ("<", 1),
    PCAP_MAGIC_NS_BE: (">", 1),
}

_BLOCK_SECTION_HEADER = 0x0A0D0D0A
_BLOCK_INTERFACE = 1
_BLOCK_PACKET_OBSOLETE = 2
_BLOCK_SIMPLE_PACKET = 3
_BLOCK_ENHANCED_PACKET = 6
_OPTION_END = 0
_OPTION_TSRESOL = 9
_OPTION_TSOFFSET = 14
_BATCH_PACKETS = 4096
# No link type carries frames anywhere near this size (tcpdump and Wireshark
# use 262144 as the largest snap length), so a larger captured length means
# a corrupt record header rather than a big packet.
MAX_CAPTURED_BYTES = 256 * 1024
# pcapng blocks that are not packets (name resolution, statistics, section
# headers) may carry long option lists, but not megabytes of them.
MAX_PCAPNG_BLOCK_BYTES = 16 * 1024 * 1024
_PCAPNG_PACKET_OVERHEAD_BYTES = 64 * 1024

logger = logging.getLogger(__name__)


class Packet(NamedTuple):
    """One packet read from a capture, before decoding."""

    number: int
    ts_ns: int
    link_type: int
    frame: bytes
    # Set when the container itself is at fault: (reject reason, detail).
    problem: tuple[str, str] | None = None


class _Interface(NamedTuple):
    link_type: int
    units_per_second: int
    power_of_two: bool
    offset_s: int


def _units_to_ns(units: int, interface: _Interface) -> int:
    if interface.power_of_two:
        return (units * 10**9 >> interface.units_per_second) + interface.offset_s * 10**9
    return units * 10**9 // interface.units_per_second + interface.offset_s * 10**9


class PcapDecoder(Decoder):
    """Decoder of pcap and pcapng captures.

    With ``keep_truncated`` (default True), a packet whose transport header
    was cut by the capture length becomes a record with the fields captured.
    When it is False, such packets are rejected as ``truncated``.
    """

    format = "pcap"

    def __init__(self, *, keep_truncated: bool = True) -> None:
        self.keep_truncated = keep_truncated

    def read_ordered(self, path: Path) -> Iterator[OrderedBatch]:
        origin = Origin(source=str(path))
        with open_binary(path) as handle:
            packets = _stop_at_damaged_gzip(iter_packets(handle, str(path)), str(path))
            yield from self._batches(packets, origin)

    def decode_payload(self, payload: bytes, origin: Origin) -> OrderedBatch:
        try:
            packets = list(iter_packets(io.BytesIO(payload), origin.source))
        except InputError as error:
            rejected = Rejected(MALFORMED, str(error), payload[:64], origin._replace(line=1))
            return [], [rejected], [0]
        return self._decode_packets(packets, origin)

    def _batches(self, packets: Iterator[Packet], origin: Origin) -> Iterator[OrderedBatch]:
        batch: list[Packet] = []
        for packet in packets:
            batch.append(packet)
            if len(batch) >= _BATCH_PACKETS:
                yield self._decode_packets(batch, origin)
                batch = []
        if batch:
            yield self._decode_packets(batch, origin)

    def _decode_packets(self, packets: list[Packet], origin: Origin) -> OrderedBatch:
        records: list[Record] = []
        rejects: list[Rejected] = []
        positions: list[int] = []
        for packet in packets:
            try:
                if packet.problem is not None:
                    raise RecordError(*packet.problem)
                records.append(decode_frame(packet.frame, packet.link_type, packet.ts_ns, self.keep_truncated))
            except RecordError as error:
                rejects.append(Rejected(error.reason, f"packet {packet.number}: {error.detail}",
                                        packet.frame, origin._replace(line=packet.number)))
                positions.append(len(records))
        return records, rejects, positions


def _stop_at_damaged_gzip(packets: Iterator[Packet], name: str) -> Iterator[Packet]:
    """End the packets with one ``truncated`` reject when the gzip stream breaks."""
    number = 0
    try:
        for packet in packets:
            number = packet.number
            yield packet
    except GZIP_DAMAGE as error:
        detail = (f"gzip stream is truncated or corrupt after {number} packets "
                  f"({type(error).__name__}: {error}); the rest of the file was not read")
        logger.warning("%s: %s", name, detail)
        yield Packet(number + 1, 0, 0, b"", (TRUNCATED, detail))


def iter_packets(handle: BinaryIO, name: str) -> Iterator[Packet]:
    """Yield the packets of a pcap or pcapng stream in file order."""
    magic = handle.read(4)
    if not magic:
        return
    if magic in _PCAP_MAGICS:
        yield from _iter_pcap(handle, magic, name)
    elif magic == PCAPNG_MAGIC:
        yield from _iter_pcapng(handle, magic, name)
    else:
        raise InputError(
            f"{name}: not a pcap or pcapng capture (magic bytes {magic.hex()}); expected "
            "d4c3b2a1, a1b2c3d4, 4d3cb2a1, a1b23c4d or 0a0d0d0a"
        )


def _iter_pcap(handle: BinaryIO, magic: bytes, name: str) -> Iterator[Packet]:
    order, ns_per_unit = _PCAP_MAGICS[magic]
    header = handle.read(20)
    if len(header) < 20:
        raise InputError(f"{name}: pcap file header is cut short ({4 + len(header)} of 24 bytes)")
    snap_length, link_type = struct.unpack(order + "II", header[12:20])
    link_type &= 0xFFFF
    record_header = struct.Struct(order + "IIII")
    number = 0
    while True:
        raw_header = handle.read(16)
        if not raw_header:
            return
        number += 1
        if len(raw_header) < 16:
            yield Packet(number, 0, link_type, raw_header, (TRUNCATED, "file ends inside a packet header"))
            return
        seconds, fraction, captured_length, _ = record_header.unpack(raw_header)
        if captured_length > MAX_CAPTURED_BYTES:
            yield _unreadable_record(number, link_type, raw_header, captured_length, name)
            return
        frame = handle.read(captured_length)
        if len(frame) < captured_length:
            detail = f"file ends inside the packet ({len(frame)} of {captured_length} bytes)"
            yield Packet(number, 0, link_type, frame, (TRUNCATED, detail))
            return
        if 0 < snap_length < captured_length:
            # The length is plausible and the bytes were there, so the next
            # record header is where this one says: keep reading.
            detail = f"captured length {captured_length} bytes exceeds the file's snap length {snap_length}"
            yield Packet(number, 0, link_type, frame, (MALFORMED, detail))
            continue
        yield Packet(number, seconds * 10**9 + fraction * ns_per_unit, link_type, frame)


def _unreadable_record(number: int, link_type: int, raw_header: bytes, captured_length: int, name: str) -> Packet:
    """Reject a record header whose length cannot be true; the file cannot be read past it."""
    detail = (f"captured length {captured_length} bytes exceeds the maximum of {MAX_CAPTURED_BYTES}; "
              "the record header is corrupt and the rest of the file was not read")
    logger.warning("%s: packet %d: %s", name, number, detail)
    return Packet(number, 0, link_type, raw_header, (MALFORMED, detail))


def _iter_pcapng(handle: BinaryIO, magic: bytes, name: str) -> Iterator[Packet]:
    order = "<"
    interfaces: list[_Interface] = []
    number = 0
    pending = magic
    while True:
        start = pending + handle.read(8 - len(pending))
        pending = b""
        if not start:
            return
        if len(start) < 8:
            raise InputError(f"{name}: pcapng file ends inside a block header")
        if start[:4] == PCAPNG_MAGIC:
            order = _section_byte_order(handle, name)
            interfaces = []
            total_length = struct.unpack(order + "I", start[4:8])[0]
            if total_length > MAX_PCAPNG_BLOCK_BYTES:
                raise InputError(f"{name}: pcapng section header of {total_length} bytes is corrupt "
                                 f"(at most {MAX_PCAPNG_BLOCK_BYTES} expected)")
            # The rest of the section header (version, options) is not needed.
            handle.read(total_length - 12)
            continue
        block_type, total_length = struct.unpack(order + "II", start)
        if total_length > _max_block_bytes(block_type):
            number += 1
            yield _unreadable_block(number, block_type, total_length, name)
            return
        body = handle.read(total_length - 8)
        if total_length < 12 or len(body) < total_length - 8:
            number += 1
            yield Packet(number, 0, 0, body, (TRUNCATED, "file ends inside a pcapng block"))
            return
        body = body[:-4]
        if block_type == _BLOCK_INTERFACE:
            interfaces.append(_parse_interface(body, order))
        elif block_type in (_BLOCK_ENHANCED_PACKET, _BLOCK_PACKET_OBSOLETE, _BLOCK_SIMPLE_PACKET):
            number += 1
            yield _packet_from_block(block_type, body, order, interfaces, number)


def _max_block_bytes(block_type: int) -> int:
    if block_type in (_BLOCK_ENHANCED_PACKET, _BLOCK_PACKET_OBSOLETE, _BLOCK_SIMPLE_PACKET):
        return MAX_CAPTURED_BYTES + _PCAPNG_PACKET_OVERHEAD_BYTES
    return MAX_PCAPNG_BLOCK_BYTES


def _unreadable_block(number: int, block_type: int, total_length: int, name: str) -> Packet:
    """Reject a block whose length cannot be true; the file cannot be read past it."""
    detail = (f"pcapng block of type {block_type} claims {total_length} bytes, more than the maximum of "
              f"{_max_block_bytes(block_type)}; the block header is corrupt and the rest of the file was not read")
    logger.warning("%s: packet %d: %s", name, number, detail)
    return Packet(number, 0, 0, b"", (MALFORMED, detail))


def _section_byte_order(handle: BinaryIO, name: str) -> str:
    byte_order_magic = handle.read(4)
    if byte_order_magic == b"\x4d\x3c\x2b\x1a":
        return "<"
    if byte_order_magic == b"\x1a\x2b\x3c\x4d":
        return ">"
    raise InputError(f"{name}: invalid pcapng byte-order magic {byte_order_magic.hex()}")


def _parse_interface(body: bytes, order: str) -> _Interface:
    link_type = struct.unpack_from(order + "H", body, 0)[0]
    units_per_second, power_of_two, offset_s = 10**6, False, 0
    position = 8
    while position + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, position)
        value = body[position + 4:position + 4 + length]
        if code == _OPTION_END:
            break
        if code == _OPTION_TSRESOL and length >= 1:
            power_of_two = bool(value[0] & 0x80)
            exponent = value[0] & 0x7F
            units_per_second = exponent if power_of_two else 10**exponent
        elif code == _OPTION_TSOFFSET and length >= 8:
            offset_s = struct.unpack(order + "q", value[:8])[0]
        position += 4 + (length + 3) // 4 * 4
    return _Interface(link_type, units_per_second, power_of_two, offset_s)


def _packet_from_block(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], number: int
) -> Packet:
    if block_type == _BLOCK_SIMPLE_PACKET:
        link_type = interfaces[0].link_type if interfaces else 0
        return Packet(number, 0, link_type, body[4:], (BAD_TIMESTAMP, "simple packet block carries no timestamp"))
    if block_type == _BLOCK_ENHANCED_PACKET:
        interface_id, high, low, captured_length = struct.unpack_from(order + "IIII", body, 0)
        frame = body[20:20 + captured_length]
    else:
        interface_id = struct.unpack_from(order + "H", body, 0)[0]
        high, low, captured_length = struct.unpack_from(order + "III", body, 4)
        frame = body[20:20 + captured_length]
    if interface_id >= len(interfaces):
        detail = f"packet names interface {interface_id}, but only {len(interfaces)} were described"
        return Packet(number, 0, 0, frame, (MALFORMED, detail))
    interface = interfaces[interface_id]
    return Packet(number, _units_to_ns((high << 32) | low, interface), interface.link_type, frame)
