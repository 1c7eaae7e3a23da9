"""Decode one captured frame (link layer, IPv4/IPv6, TCP/UDP) into a Record.

Headers are read with ``struct`` at fixed offsets so that truncation is
explicit. When the capture stops inside the transport header, the record
keeps the fields that were captured. When it stops before the IP addresses,
the frame is rejected as ``truncated``. Fragments after the first carry no
transport header, so they become records without ports. Reading capture
files is in ``pcap.py``; this module only sees one frame at a time.
"""

from __future__ import annotations

import struct
from typing import Callable

from darkvec_stream.ingest.address import ipv4_from_bytes, ipv6_from_bytes
from darkvec_stream.ingest.errors import MALFORMED, NOT_IP, TRUNCATED, UNSUPPORTED_LINK, RecordError
from darkvec_stream.ingest.record import PROTO_TCP, PROTO_UDP, Record

# Link-layer header types (tcpdump.org LINKTYPE_* values).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT = 12
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
# 802.1Q customer tag, 802.1ad service tag, and the pre-standard QinQ tag.
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)

# Address families of the BSD loopback header: AF_INET everywhere, AF_INET6
# on Linux (10), NetBSD/OpenBSD (24), FreeBSD (28) and macOS (30).
_AF_INET = 2
_AF_INET6 = (10, 24, 28, 30)
# IPv6 extension headers that are skipped to reach the transport header.
_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_FRAGMENT, _IPV6_DEST_OPTIONS, _IPV6_AH = 0, 43, 44, 60, 51

_new_record = tuple.__new__
_unpack_u16 = struct.Struct("!H").unpack_from
_unpack_ipv4 = struct.Struct("!BBHHHBBH").unpack_from


def decode_frame(frame: bytes, link_type: int, ts_ns: int, keep_truncated: bool = True) -> Record:
    """Decode one captured frame; raise ``RecordError`` when it has no usable IP header."""
    locate = _LINK_DECODERS.get(link_type)
    if locate is None:
        raise RecordError(UNSUPPORTED_LINK, f"link type {link_type} is not supported; supported: "
                          f"{', '.join(str(link) for link in sorted(_LINK_DECODERS))}")
    version, offset = locate(frame)
    if version == 4:
        return _decode_ipv4(frame, offset, ts_ns, keep_truncated)
    return _decode_ipv6(frame, offset, ts_ns, keep_truncated)


def _ethernet(frame: bytes) -> tuple[int, int]:
    if len(frame) < 14:
        raise RecordError(TRUNCATED, f"Ethernet header needs 14 bytes, captured {len(frame)}")
    ethertype = _unpack_u16(frame, 12)[0]
    offset = 14
    while ethertype in VLAN_ETHERTYPES:
        if len(frame) < offset + 4:
            raise RecordError(TRUNCATED, f"VLAN tag at byte {offset} cut by the capture length")
        ethertype = _unpack_u16(frame, offset + 2)[0]
        offset += 4
    return _by_ethertype(ethertype), offset


def _by_ethertype(ethertype: int) -> int:
    if ethertype == ETHERTYPE_IPV4:
        return 4
    if ethertype == ETHERTYPE_IPV6:
        return 6
    raise RecordError(NOT_IP, f"ethertype 0x{ethertype:04x} is not IPv4 or IPv6")


def _linux_sll(frame: bytes) -> tuple[int, int]:
    if len(frame) < 16:
        raise RecordError(TRUNCATED, f"Linux cooked (SLL) header needs 16 bytes, captured {len(frame)}")
    return _by_ethertype(_unpack_u16(frame, 14)[0]), 16


def _linux_sll2(frame: bytes) -> tuple[int, int]:
    if len(frame) < 20:
        raise RecordError(TRUNCATED, f"Linux cooked (SLL2) header needs 20 bytes, captured {len(frame)}")
    return _by_ethertype(_unpack_u16(frame, 0)[0]), 20


def _raw_ip(frame: bytes) -> tuple[int, int]:
    if not frame:
        raise RecordError(TRUNCATED, "empty raw IP frame")
    version = frame[0] >> 4
    if version not in (4, 6):
        raise RecordError(NOT_IP, f"IP version {version} in a raw IP frame")
    return version, 0


def _raw_ipv4(frame: bytes) -> tuple[int, int]:
    return 4, 0


def _raw_ipv6(frame: bytes) -> tuple[int, int]:
    return 6, 0


def _loopback(frame: bytes) -> tuple[int, int]:
    if len(frame) < 4:
        raise RecordError(TRUNCATED, f"loopback header needs 4 bytes, captured {len(frame)}")
    # The family is in the byte order of the capturing host, which the
    # file does not record, so both orders are tried.
    for family in (int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big")):
        if family == _AF_INET:
            return 4, 4
        if family in _AF_INET6:
            return 6, 4
    raise RecordError(NOT_IP, f"loopback address family {frame[:4].hex()} is not IPv4 or IPv6")


_LINK_DECODERS: dict[int, Callable[[bytes], tuple[int, int]]] = {
    LINKTYPE_NULL: _loopback,
    LINKTYPE_LOOP: _loopback,
    LINKTYPE_ETHERNET: _ethernet,
    LINKTYPE_RAW_DLT: _raw_ip,
    LINKTYPE_RAW: _raw_ip,
    LINKTYPE_IPV4: _raw_ipv4,
    LINKTYPE_IPV6: _raw_ipv6,
    LINKTYPE_LINUX_SLL: _linux_sll,
    LINKTYPE_LINUX_SLL2: _linux_sll2,
}
SUPPORTED_LINK_TYPES = tuple(sorted(_LINK_DECODERS))


def _decode_ipv4(frame: bytes, offset: int, ts_ns: int, keep_truncated: bool) -> Record:
    if len(frame) < offset + 20:
        raise RecordError(TRUNCATED, f"IPv4 header needs 20 bytes, captured {len(frame) - offset}")
    version_ihl, _, total_length, _, flags_fragment, ttl, proto, _ = _unpack_ipv4(frame, offset)
    if version_ihl >> 4 != 4:
        raise RecordError(MALFORMED, f"IP version {version_ihl >> 4} where IPv4 was expected")
    header_length = (version_ihl & 0x0F) * 4
    if header_length < 20:
        raise RecordError(MALFORMED, f"IPv4 header length {header_length} below 20")
    src = ipv4_from_bytes(frame[offset + 12:offset + 16])
    dst = ipv4_from_bytes(frame[offset + 16:offset + 20])
    is_later_fragment = flags_fragment & 0x1FFF != 0
    transport = offset + header_length
    return _with_transport(frame, transport, ts_ns, src, dst, proto, total_length, ttl,
                           is_later_fragment, keep_truncated)


def _decode_ipv6(frame: bytes, offset: int, ts_ns: int, keep_truncated: bool) -> Record:
    if len(frame) < offset + 40:
        raise RecordError(TRUNCATED, f"IPv6 header needs 40 bytes, captured {len(frame) - offset}")
    if frame[offset] >> 4 != 6:
        raise RecordError(MALFORMED, f"IP version {frame[offset] >> 4} where IPv6 was expected")
    payload_length = _unpack_u16(frame, offset + 4)[0]
    next_header = frame[offset + 6]
    hop_limit = frame[offset + 7]
    src = ipv6_from_bytes(frame[offset + 8:offset + 24])
    dst = ipv6_from_bytes(frame[offset + 24:offset + 40])
    position = offset + 40
    is_later_fragment = False
    # Walk the extension headers to the transport header, as far as captured.
    while next_header in (_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_DEST_OPTIONS, _IPV6_FRAGMENT, _IPV6_AH):
        if len(frame) < position + 8:
            position = len(frame) + 1
            break
        if next_header == _IPV6_FRAGMENT:
            is_later_fragment = _unpack_u16(frame, position + 2)[0] >> 3 != 0
            extension_length = 8
        elif next_header == _IPV6_AH:
            extension_length = (frame[position + 1] + 2) * 4
        else:
            extension_length = (frame[position + 1] + 1) * 8
        next_header = frame[position]
        position += extension_length
    return _with_transport(frame, position, ts_ns, src, dst, next_header, 40 + payload_length,
                           hop_limit, is_later_fragment, keep_truncated)


def _with_transport(
    frame: bytes, position: int, ts_ns: int, src: str, dst: str, proto: int, length: int,
    ttl: int, is_later_fragment: bool, keep_truncated: bool,
) -> Record:
    src_port = dst_port = tcp_flags = tcp_seq = None
    if proto in (PROTO_TCP, PROTO_UDP) and not is_later_fragment:
        captured = len(frame) - position
        needed = 14 if proto == PROTO_TCP else 4
        if captured < needed and not keep_truncated:
            raise RecordError(TRUNCATED, f"transport header of protocol {proto} needs {needed} bytes, "
                              f"captured {max(captured, 0)}")
        if captured >= 4:
            src_port, dst_port = struct.unpack_from("!HH", frame, position)
        if proto == PROTO_TCP and captured >= 8:
            tcp_seq = struct.unpack_from("!I", frame, position + 4)[0]
        if proto == PROTO_TCP and captured >= 14:
            # The NS flag is the low bit of the byte before the other eight.
            tcp_flags = ((frame[position + 12] & 0x01) << 8) | frame[position + 13]
    return _new_record(Record, (ts_ns, src, dst, src_port, dst_port, proto, length, tcp_flags, ttl,
                                tcp_seq, 1, None))
