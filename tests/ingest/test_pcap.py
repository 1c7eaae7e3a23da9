from __future__ import annotations

import io
import socket
import struct
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from darkvec_stream.errors import InputError
from darkvec_stream.ingest import get_decoder, read_file
from darkvec_stream.ingest.record import Origin, Record, Rejected
from tests.ingest.conftest import GREYNOISE, need

SRC4, DST4 = "198.51.100.7", "192.0.2.33"
SRC6, DST6 = "2001:db8::7", "2001:db8:1::33"
TS_S = 1_700_000_000.5
TS_NS = 1_700_000_000_500_000_000


def tcp_segment(seq: int = 0xC0000221, flags: int = dpkt.tcp.TH_SYN) -> dpkt.tcp.TCP:
    return dpkt.tcp.TCP(sport=40000, dport=23, seq=seq, flags=flags, off=5)


def ipv4_packet(**fields: int) -> bytes:
    packet = dpkt.ip.IP(src=socket.inet_aton(SRC4), dst=socket.inet_aton(DST4), p=dpkt.ip.IP_PROTO_TCP, ttl=51,
                        data=tcp_segment(), **fields)
    return bytes(packet)


def ipv6_packet(payload: bytes | None = None, next_header: int = dpkt.ip.IP_PROTO_TCP) -> bytes:
    body = payload if payload is not None else bytes(tcp_segment())
    packet = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, SRC6), dst=socket.inet_pton(socket.AF_INET6, DST6),
                          nxt=next_header, hlim=44, plen=len(body), v_fc_flow=6 << 28)
    return bytes(packet.pack_hdr()) + body


def ethernet(payload: bytes, ethertype: int, tags: tuple[int, ...] = ()) -> bytes:
    header = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02"
    for tag_type in tags:
        header += struct.pack("!HH", tag_type, 100)
    return header + struct.pack("!H", ethertype) + payload


def write_pcap(path: Path, frames: list[bytes], link_type: int, nano: bool = False) -> Path:
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, linktype=link_type, nano=nano, snaplen=65535)
        for frame in frames:
            writer.writepkt(frame, ts=TS_S)
    return path


def decode_one(tmp_path: Path, frame: bytes, link_type: int, **options: bool) -> Record | Rejected:
    items = list(read_file(write_pcap(tmp_path / "one.pcap", [frame], link_type), "pcap", **options))
    assert len(items) == 1
    return items[0]


EXPECTED_V4 = Record(TS_NS, SRC4, DST4, 40000, 23, 6, 40, 2, 51, 0xC0000221)
EXPECTED_V6 = Record(TS_NS, SRC6, DST6, 40000, 23, 6, 60, 2, 44, 0xC0000221)


@pytest.mark.parametrize(
    ("name", "link_type", "frame", "expected"),
    [
        ("ethernet", 1, ethernet(ipv4_packet(), 0x0800), EXPECTED_V4),
        ("ethernet-ipv6", 1, ethernet(ipv6_packet(), 0x86DD), EXPECTED_V6),
        ("802.1q", 1, ethernet(ipv4_packet(), 0x0800, (0x8100,)), EXPECTED_V4),
        ("qinq", 1, ethernet(ipv6_packet(), 0x86DD, (0x88A8, 0x8100)), EXPECTED_V6),
        ("sll", 113, struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ipv4_packet(), EXPECTED_V4),
        ("sll2", 276, struct.pack("!HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, b"\x02" * 8) + ipv6_packet(), EXPECTED_V6),
        ("raw-101", 101, ipv4_packet(), EXPECTED_V4),
        ("raw-12", 12, ipv6_packet(), EXPECTED_V6),
        ("ipv4-228", 228, ipv4_packet(), EXPECTED_V4),
        ("ipv6-229", 229, ipv6_packet(), EXPECTED_V6),
        ("null-le", 0, struct.pack("<I", 2) + ipv4_packet(), EXPECTED_V4),
        ("null-be-ipv6", 0, struct.pack(">I", 30) + ipv6_packet(), EXPECTED_V6),
        ("loop", 108, struct.pack(">I", 2) + ipv4_packet(), EXPECTED_V4),
    ],
)
def test_link_types(tmp_path: Path, name: str, link_type: int, frame: bytes, expected: Record) -> None:
    assert decode_one(tmp_path, frame, link_type) == expected


def test_ipv4_mapped_and_udp(tmp_path: Path) -> None:
    udp = dpkt.udp.UDP(sport=5353, dport=53, data=b"x" * 4)
    udp.ulen = len(bytes(udp))
    packet = bytes(dpkt.ip.IP(src=socket.inet_aton(SRC4), dst=socket.inet_aton(DST4), p=17, ttl=9, data=udp))
    assert decode_one(tmp_path, packet, 101) == Record(TS_NS, SRC4, DST4, 5353, 53, 17, 32, None, 9)


def test_ipv4_fragments(tmp_path: Path) -> None:
    first = ipv4_packet(mf=1)
    later = bytes(dpkt.ip.IP(src=socket.inet_aton(SRC4), dst=socket.inet_aton(DST4), p=6, ttl=51, offset=185,
                             data=b"\x00" * 16))
    path = write_pcap(tmp_path / "fragments.pcap", [first, later], 101)
    records = list(read_file(path, "pcap"))
    assert records[0] == EXPECTED_V4
    assert records[1] == Record(TS_NS, SRC4, DST4, None, None, 6, 36, None, 51, None)


def test_ipv6_fragment_and_extension_headers(tmp_path: Path) -> None:
    segment = bytes(tcp_segment())
    hop_by_hop = bytes([44, 0]) + b"\x00" * 6
    first = hop_by_hop + struct.pack("!BBHI", 6, 0, 0x0001, 77) + segment
    later = struct.pack("!BBHI", 6, 0, (8 << 3), 77) + b"\x00" * 8
    frames = [ipv6_packet(first, next_header=0), ipv6_packet(later, next_header=44)]
    records = list(read_file(write_pcap(tmp_path / "v6frag.pcap", frames, 229), "pcap"))
    assert records[0] == EXPECTED_V6._replace(length=40 + len(first))
    assert records[1] == Record(TS_NS, SRC6, DST6, None, None, 6, 56, None, 44, None)


def test_truncated_transport_kept_or_rejected(tmp_path: Path) -> None:
    frame = ethernet(ipv4_packet(), 0x0800)[:14 + 20 + 6]
    kept = decode_one(tmp_path, frame, 1)
    assert kept == Record(TS_NS, SRC4, DST4, 40000, 23, 6, 40, None, 51, None)
    refused = decode_one(tmp_path, frame, 1, keep_truncated=False)
    assert isinstance(refused, Rejected)
    assert refused.reason == "truncated"
    assert "needs 14 bytes, captured 6" in refused.detail


def test_truncated_ip_header_rejected(tmp_path: Path) -> None:
    rejected = decode_one(tmp_path, ethernet(ipv4_packet(), 0x0800)[:14 + 12], 1)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "truncated"
    assert rejected.origin == Origin(str(tmp_path / "one.pcap"), line=1)


def test_arp_is_not_ip(tmp_path: Path) -> None:
    arp = bytes(dpkt.arp.ARP())
    rejected = decode_one(tmp_path, ethernet(arp, 0x0806), 1)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "not_ip"
    assert "0x0806" in rejected.detail


def test_unsupported_link_type(tmp_path: Path) -> None:
    rejected = decode_one(tmp_path, ipv4_packet(), 105)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unsupported_link"
    assert "105" in rejected.detail


def hand_written_pcap(magic: bytes, order: str, fraction: int, frames: list[bytes]) -> bytes:
    """A pcap container built with struct, independent of dpkt's writer."""
    content = magic + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, 101)
    for frame in frames:
        content += struct.pack(order + "IIII", 1_700_000_000, fraction, len(frame), len(frame)) + frame
    return content


@pytest.mark.parametrize(
    ("magic", "order", "fraction", "ts_ns"),
    [
        (b"\xd4\xc3\xb2\xa1", "<", 123_456, 1_700_000_000_123_456_000),
        (b"\xa1\xb2\xc3\xd4", ">", 123_456, 1_700_000_000_123_456_000),
        (b"\x4d\x3c\xb2\xa1", "<", 123_456_789, 1_700_000_000_123_456_789),
        (b"\xa1\xb2\x3c\x4d", ">", 123_456_789, 1_700_000_000_123_456_789),
    ],
)
def test_pcap_magic_variants(tmp_path: Path, magic: bytes, order: str, fraction: int, ts_ns: int) -> None:
    path = tmp_path / "variant.pcap"
    path.write_bytes(hand_written_pcap(magic, order, fraction, [ipv4_packet()]))
    assert list(read_file(path, "pcap")) == [EXPECTED_V4._replace(ts_ns=ts_ns)]


def test_dpkt_nanosecond_writer(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "nano.pcap", [ipv4_packet()], 101, nano=True)
    assert list(read_file(path, "pcap")) == [EXPECTED_V4]


def test_pcapng_two_interfaces_and_resolution(tmp_path: Path) -> None:
    microsecond = dpkt.pcapng.InterfaceDescriptionBlockLE(linktype=1, snaplen=65535)
    nanosecond = dpkt.pcapng.InterfaceDescriptionBlockLE(
        linktype=101, snaplen=65535,
        opts=[dpkt.pcapng.PcapngOptionLE(code=dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL, data=b"\x09"),
              dpkt.pcapng.PcapngOptionLE(code=dpkt.pcapng.PCAPNG_OPT_ENDOFOPT)],
    )
    path = tmp_path / "two.pcapng"
    with open(path, "wb") as handle:
        writer = dpkt.pcapng.Writer(handle, idb=[microsecond, nanosecond])
        writer.writepkt(ethernet(ipv4_packet(), 0x0800), ts=TS_S)
        ns_units = 1_700_000_000_123_456_789
        block = dpkt.pcapng.EnhancedPacketBlockLE(
            iface_id=1, ts_high=ns_units >> 32, ts_low=ns_units & 0xFFFFFFFF,
            caplen=60, pkt_len=60, pkt_data=ipv6_packet(),
        )
        writer.writepkt(block)
    assert list(read_file(path, "pcap")) == [EXPECTED_V4, EXPECTED_V6._replace(ts_ns=1_700_000_000_123_456_789)]


def test_file_cut_inside_packet(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", [ipv4_packet(), ipv4_packet()], 101)
    path.write_bytes(path.read_bytes()[:-10])
    items = list(read_file(path, "pcap"))
    assert items[0] == EXPECTED_V4
    assert isinstance(items[1], Rejected)
    assert items[1].reason == "truncated"
    assert items[1].origin.line == 2


def test_not_a_capture_raises(tmp_path: Path) -> None:
    path = tmp_path / "text.pcap"
    path.write_bytes(b"hello world")
    with pytest.raises(InputError, match="not a pcap or pcapng"):
        list(read_file(path, "pcap"))


def test_message_holds_whole_capture(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    writer = dpkt.pcap.Writer(buffer, linktype=101)
    writer.writepkt(ipv4_packet(), ts=TS_S)
    writer.writepkt(b"\x45\x00", ts=TS_S)
    origin = Origin("pcaps", 0, 3)
    records, rejects = get_decoder("pcap").decode_message(buffer.getvalue(), origin)
    assert records == [EXPECTED_V4]
    assert rejects[0].origin == origin._replace(line=2)
    garbage = get_decoder("pcap").decode_message(b"garbage", origin)
    assert garbage[0] == []
    assert garbage[1][0].reason == "malformed"


def test_greynoise_real_capture() -> None:
    items = list(read_file(need(GREYNOISE), "pcap"))
    records = [item for item in items if isinstance(item, Record)]
    assert len(items) == 5170
    assert len(records) == 5170
    # Counts published with the capture: SYN-ACK 2,685, SYN 2,466, RST 19.
    assert Counter(record.tcp_flags for record in records) == {0x12: 2685, 0x02: 2466, 0x04: 19}
    assert Counter(record.dst_port for record in records).most_common(1) == [(443, 2485)]
    assert all(record.proto == 6 and record.tcp_seq is not None for record in records)
    assert records[0].ts_ns // 10**9 == 1724074914
    assert len({record.src for record in records}) == 1977
