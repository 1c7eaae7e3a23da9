"""Write simulated packet batches in every input format the project reads.

Rows are built column-wise with pyarrow compute kernels (and pcap frames
with numpy byte arrays), because a per-record Python loop would take hours
for a month of a /24. Output is deterministic: gzip members carry no name
and a zero modification time. Reading files back is the ingest stage's job.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import BinaryIO, Callable

import dpkt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from darkvec_stream.simulate.engine import NULL, PacketBatch

OUTPUT_FORMATS = ("record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn", "pcap")
EXTENSIONS = {
    "record-csv": "csv", "darkvec-csv": "csv", "csv": "csv",
    "jsonl": "jsonl", "zeek-conn": "log", "pcap": "pcap",
}
RECORD_CSV_HEADER = "ts_ns,src,dst,src_port,dst_port,proto,length,tcp_flags,ttl,tcp_seq,packets,mirai"
# The DarkVec raw trace layout; its datetime index column is literally named "0".
DARKVEC_HEADER = ("0,ts,ethtype,src_ip,src_port,dst_ip,dst_port,proto,pck_len,tcp_flags,mirai,"
                  "tcp_seq,ttl,t_mss,t_win,t_ts,t_sack,t_sackp")
# The layout of the marx iptables capture, the generic ``csv`` decoder's preset.
MARX_HEADER = "datetime,host,src,proto,type,spt,dpt"
ZEEK_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
               "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
               "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
               "tunnel_parents")
ZEEK_TYPES = ("time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count",
              "count", "string", "bool", "bool", "count", "string", "count", "count", "count", "count",
              "set[string]")
_PROTOCOL_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp"}
_ETHERNET_MIN_FRAME_BYTES = 60
_NS_PER_S = 1_000_000_000


def check_format(name: str) -> str:
    if name not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown output format {name!r}; allowed: {', '.join(OUTPUT_FORMATS)}")
    return name


# Column helpers ------------------------------------------------------------

def _text(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pc.cast(pa.array(values, mask=null), pa.string())


def _nullable(values: np.ndarray) -> pa.Array:
    return _text(values, values == NULL)


def _ipv4(values: np.ndarray) -> pa.Array:
    octets = [_text((values >> shift) & 0xFF) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(_text(values), width=width, padding="0")


def _epoch_seconds(ts_ns: np.ndarray, digits: int) -> pa.Array:
    """Exact decimal seconds: ``digits`` fraction digits (6 or 9)."""
    unit = 10 ** (9 - digits)
    return pc.binary_join_element_wise(_text(ts_ns // _NS_PER_S), _padded(ts_ns % _NS_PER_S // unit, digits), ".")


def _datetime_text(ts_ns: np.ndarray, separator: str, fraction_digits: int) -> pa.Array:
    """Format UTC ``YYYY-MM-DD<sep>HH:MM:SS[.fffffffff]``, looking the date and hour up once per hour."""
    hour = ts_ns // (3600 * _NS_PER_S)
    hours, position = np.unique(hour, return_inverse=True)
    labels = np.datetime_as_string((hours * 3600).astype("datetime64[s]"), unit="h")
    prefix = pa.array([label.replace("T", separator) for label in labels.tolist()]).take(pa.array(position))
    seconds_in_hour = ts_ns // _NS_PER_S % 3600
    parts = [prefix, _padded(seconds_in_hour // 60, 2), _padded(seconds_in_hour % 60, 2)]
    text = pc.binary_join_element_wise(*parts, ":")
    if fraction_digits:
        text = pc.binary_join_element_wise(text, _padded(ts_ns % _NS_PER_S, 9), ".")
    return text


def _lines(columns: list[pa.Array | str], separator: str) -> bytes:
    """Join columns into newline-terminated lines; nulls must be filled beforehand."""
    joined = pc.binary_join_element_wise(*columns, separator)
    lines = pc.binary_join_element_wise(joined, "", "\n")
    return _string_buffer(lines)


def _string_buffer(array: pa.Array) -> bytes:
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    data = array.buffers()[2]
    return data.to_pybytes()[offsets[0]:offsets[-1]] if data is not None else b""


def _fill(array: pa.Array, text: str) -> pa.Array:
    return pc.fill_null(array, text)


def _time_digits(batch: PacketBatch) -> int:
    return 6 if not np.any(batch.ts_ns % 1000) else 9


# Text formats ----------------------------------------------------------------

def record_csv_rows(batch: PacketBatch) -> bytes:
    """Rows of the project wire format: empty for null, ``mirai`` left empty."""
    if not len(batch):
        return b""
    columns = [
        _text(batch.ts_ns), _ipv4(batch.src), _ipv4(batch.dst), _nullable(batch.src_port),
        _nullable(batch.dst_port), _text(batch.proto), _text(batch.length),
        _nullable(batch.tcp_flags), _text(batch.ttl), _nullable(batch.tcp_seq), "1", "",
    ]
    return _lines([_fill(column, "") if isinstance(column, pa.Array) else column for column in columns], ",")


def darkvec_csv_rows(batch: PacketBatch) -> bytes:
    """Rows of the DarkVec raw trace layout: ``-`` for null, ``pck_len`` as the Ethernet frame length."""
    if not len(batch):
        return b""
    tcp = batch.proto == PROTO_TCP
    frame_bytes = np.maximum(batch.length + 14, _ETHERNET_MIN_FRAME_BYTES)
    mss = np.where(tcp & (batch.length >= 44), 1460, NULL)
    mirai = np.where(tcp, batch.mirai.astype(np.int64), NULL)
    columns = [
        _datetime_text(batch.ts_ns, " ", 9), _epoch_seconds(batch.ts_ns, _time_digits(batch)), "2048",
        _ipv4(batch.src), _nullable(batch.src_port), _ipv4(batch.dst), _nullable(batch.dst_port),
        _text(batch.proto), _text(frame_bytes), _nullable(batch.tcp_flags), _nullable(mirai),
        _nullable(batch.tcp_seq), _text(batch.ttl), _nullable(mss), "-", "-", "-", "-",
    ]
    return _lines([_fill(column, "-") if isinstance(column, pa.Array) else column for column in columns], ",")


def marx_csv_rows(batch: PacketBatch) -> bytes:
    """Rows of the marx iptables layout: 1 s resolution, ``src`` as an integer, ``host`` as the destination."""
    if not len(batch):
        return b""
    names = np.asarray(["", "ICMP", "", "", "", "", "TCP"] + [""] * 10 + ["UDP"], dtype=object)
    columns = [
        _datetime_text(batch.ts_ns, " ", 0), _ipv4(batch.dst), _text(batch.src),
        pa.array(names[batch.proto], type=pa.string()), _nullable(batch.icmp_type.astype(np.int64)),
        _nullable(batch.src_port), _nullable(batch.dst_port),
    ]
    return _lines([_fill(column, "") for column in columns], ",")


def _json_field(name: str, values: pa.Array, quoted: bool = False) -> pa.Array:
    """``,"name":value`` per row, or an empty string where the value is null."""
    quote = '"' if quoted else ""
    piece = pc.binary_join_element_wise(f',"{name}":{quote}', values, quote, "")
    return _fill(piece, "")


def jsonl_rows(batch: PacketBatch) -> bytes:
    """goflow2-style JSON lines; absent fields are left out."""
    if not len(batch):
        return b""
    ts_text = _text(batch.ts_ns)
    columns = [
        '{"type":"IPFIX"', _json_field("time_received_ns", ts_text), _json_field("time_flow_start_ns", ts_text),
        _json_field("src_addr", _ipv4(batch.src), quoted=True), _json_field("dst_addr", _ipv4(batch.dst), quoted=True),
        _json_field("src_port", _nullable(batch.src_port)), _json_field("dst_port", _nullable(batch.dst_port)),
        _json_field("proto", _text(batch.proto)), ',"packets":1', _json_field("bytes", _text(batch.length)),
        _json_field("tcp_flags", _nullable(batch.tcp_flags)), _json_field("tcp_seq", _nullable(batch.tcp_seq)),
        _json_field("ip_ttl", _text(batch.ttl)), _json_field("icmp_type", _nullable(batch.icmp_type.astype(np.int64))),
        "}",
    ]
    return _lines(columns, "")


def _zeek_uids(batch: PacketBatch) -> pa.Array:
    """Zeek-like connection ids ("C" and 17 base-62 characters) derived from the packet fields."""
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    mixed = (batch.ts_ns.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (batch.src.astype(np.uint64) << np.uint64(17))
    mixed ^= batch.dst.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
    characters = np.empty((len(batch), 18), dtype=np.uint8)
    characters[:, 0] = ord("C")
    value = mixed
    for position in range(1, 18):
        characters[:, position] = alphabet[(value % np.uint64(62)).astype(np.int64)]
        value = (value // np.uint64(62)) ^ (value * np.uint64(0x94D049BB133111EB))
    return pa.array(characters.view("S18").ravel().astype(str))


def zeek_rows(batch: PacketBatch) -> bytes:
    """conn.log rows: one single-packet connection per record, ICMP type/code in the port columns."""
    if not len(batch):
        return b""
    tcp, icmp = batch.proto == PROTO_TCP, batch.proto == PROTO_ICMP
    syn_only = tcp & (batch.tcp_flags == 0x02)
    orig_port = np.where(icmp, batch.icmp_type, batch.src_port)
    resp_port = np.where(icmp, 0, batch.dst_port)
    names = np.asarray([_PROTOCOL_NAMES.get(code, "unknown_transport") for code in range(256)], dtype=object)
    history = np.where(syn_only, "S", np.where(tcp & (batch.tcp_flags & 0x04 > 0), "R",
                                                np.where(tcp, "H", np.where(icmp, "-", "D"))))
    state = np.where(syn_only | (batch.proto == PROTO_UDP), "S0", "OTH")
    columns = [
        _epoch_seconds(batch.ts_ns, _time_digits(batch)), _zeek_uids(batch), _ipv4(batch.src), _text(orig_port),
        _ipv4(batch.dst), _text(resp_port), pa.array(names[batch.proto], type=pa.string()), "-", "-", "-", "-",
        pa.array(state), "-", "-", "0", pa.array(history), "1", _text(batch.length), "0", "0", "-",
    ]
    return _lines(columns, "\t")


def zeek_header(open_ns: int) -> bytes:
    stamp = _zeek_stamp(open_ns)
    lines = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
             "#path\tconn", f"#open\t{stamp}", "#fields\t" + "\t".join(ZEEK_FIELDS),
             "#types\t" + "\t".join(ZEEK_TYPES)]
    return ("\n".join(lines) + "\n").encode()


def zeek_footer(close_ns: int) -> bytes:
    return f"#close\t{_zeek_stamp(close_ns)}\n".encode()


def _zeek_stamp(ts_ns: int) -> str:
    text = np.datetime_as_string(np.datetime64(ts_ns // _NS_PER_S, "s"), unit="s")
    return text.replace("T", "-").replace(":", "-")


# pcap ------------------------------------------------------------------------

_ETHERNET_HEADER = bytes.fromhex("0200005e0001" "0200005e0002" "0800")
_TCP_OPTIONS = {40: b"", 44: bytes.fromhex("020405b4"), 48: bytes.fromhex("020405b401010402"),
                60: bytes.fromhex("020405b40402080a000000000000000001030307")}


def _put(buffer: np.ndarray, position: np.ndarray, values: np.ndarray, size: int) -> None:
    """Write ``values`` big-endian, ``size`` bytes each, at byte ``position`` of each row."""
    values = values.astype(np.uint64)
    for byte in range(size):
        shift = np.uint64(8 * (size - 1 - byte))
        buffer[position + byte] = ((values >> shift) & np.uint64(0xFF)).astype(np.uint8)


def _checksum(words_sum: np.ndarray) -> np.ndarray:
    total = words_sum.astype(np.uint64)
    for _ in range(3):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    return (~total.astype(np.uint16)).astype(np.uint16)


def _word_sum(buffer: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of the 16-bit big-endian words in ``buffer[start:start+length]`` per row.

    An odd last byte is summed as if followed by a zero byte, as the
    Internet checksum (RFC 1071) pads it.
    """
    maximum = int(length.max()) if length.size else 0
    total = np.zeros(start.size, dtype=np.uint64)
    for offset in range(0, maximum, 2):
        inside = offset < length
        position = start[inside] + offset
        high = buffer[position].astype(np.uint64) << np.uint64(8)
        low = np.where(offset + 1 < length[inside], buffer[np.minimum(position + 1, buffer.size - 1)], 0)
        total[inside] += high | low.astype(np.uint64)
    return total


def pcap_records(batch: PacketBatch) -> bytes:
    """pcap packet records (nanosecond header, Ethernet, IPv4 and TCP/UDP/ICMP with checksums).

    Frames shorter than the Ethernet minimum are zero-padded to 60 bytes the
    way a sender's network card pads them; the IPv4 total length is exact.
    """
    count = len(batch)
    if not count:
        return b""
    ip_length = batch.length.astype(np.int64)
    frame_length = np.maximum(ip_length + 14, _ETHERNET_MIN_FRAME_BYTES)
    record_start = np.zeros(count, dtype=np.int64)
    record_start[1:] = np.cumsum(16 + frame_length)[:-1]
    buffer = np.zeros(int((16 + frame_length).sum()), dtype=np.uint8)

    # Record header, little-endian: seconds, nanoseconds, captured and original length.
    header = np.zeros((count, 4), dtype="<u4")
    header[:, 0] = batch.ts_ns // _NS_PER_S
    header[:, 1] = batch.ts_ns % _NS_PER_S
    header[:, 2] = frame_length
    header[:, 3] = frame_length
    header_bytes = header.view(np.uint8).reshape(count, 16)
    for byte in range(16):
        buffer[record_start + byte] = header_bytes[:, byte]

    ethernet = record_start + 16
    for byte, value in enumerate(_ETHERNET_HEADER):
        buffer[ethernet + byte] = value
    ip = ethernet + 14
    _fill_ipv4(buffer, ip, batch, ip_length)
    _fill_transport(buffer, ip + 20, batch, ip_length - 20)
    return buffer.tobytes()


def _fill_ipv4(buffer: np.ndarray, ip: np.ndarray, batch: PacketBatch, ip_length: np.ndarray) -> None:
    buffer[ip] = 0x45
    _put(buffer, ip + 2, ip_length, 2)
    _put(buffer, ip + 4, (batch.ts_ns // 1000) & 0xFFFF, 2)
    buffer[ip + 8] = batch.ttl
    buffer[ip + 9] = batch.proto
    _put(buffer, ip + 12, batch.src, 4)
    _put(buffer, ip + 16, batch.dst, 4)
    _put(buffer, ip + 10, _checksum(_word_sum(buffer, ip, np.full(ip.size, 20))), 2)


def _fill_transport(buffer: np.ndarray, l4: np.ndarray, batch: PacketBatch, l4_length: np.ndarray) -> None:
    tcp = batch.proto == PROTO_TCP
    udp = batch.proto == PROTO_UDP
    icmp = batch.proto == PROTO_ICMP
    ports = tcp | udp
    _put(buffer, l4[ports], batch.src_port[ports], 2)
    _put(buffer, l4[ports] + 2, batch.dst_port[ports], 2)

    _put(buffer, l4[tcp] + 4, batch.tcp_seq[tcp], 4)
    for option_length, options in _TCP_OPTIONS.items():
        rows = tcp & (l4_length == option_length - 20)
        buffer[l4[rows] + 12] = (option_length - 20) // 4 << 4
        for byte, value in enumerate(options):
            buffer[l4[rows] + 20 + byte] = value
    buffer[l4[tcp] + 13] = batch.tcp_flags[tcp].astype(np.uint8)
    _put(buffer, l4[tcp] + 14, np.full(int(tcp.sum()), 64240), 2)

    _put(buffer, l4[udp] + 4, l4_length[udp], 2)

    buffer[l4[icmp]] = batch.icmp_type[icmp].astype(np.uint8)
    _put(buffer, l4[icmp] + 4, batch.src[icmp] & 0xFFFF, 2)
    _put(buffer, l4[icmp] + 6, (batch.ts_ns[icmp] // 1000) & 0xFFFF, 2)

    _fill_transport_checksums(buffer, l4, batch, l4_length, tcp, udp, icmp)


def _fill_transport_checksums(buffer: np.ndarray, l4: np.ndarray, batch: PacketBatch, l4_length: np.ndarray,
                              tcp: np.ndarray, udp: np.ndarray, icmp: np.ndarray) -> None:
    # TCP and UDP checksums cover a pseudo-header of addresses, protocol and length.
    for rows, offset in ((tcp, 16), (udp, 6)):
        src, dst = batch.src[rows].astype(np.uint64), batch.dst[rows].astype(np.uint64)
        pseudo = ((src >> np.uint64(16)) + (src & np.uint64(0xFFFF)) + (dst >> np.uint64(16))
                  + (dst & np.uint64(0xFFFF)) + batch.proto[rows].astype(np.uint64)
                  + l4_length[rows].astype(np.uint64))
        checksum = _checksum(pseudo + _word_sum(buffer, l4[rows], l4_length[rows]))
        if offset == 6:
            # An all-zero UDP checksum means "none", so a computed zero is sent as 0xFFFF.
            checksum = np.where(checksum == 0, 0xFFFF, checksum)
        _put(buffer, l4[rows] + offset, checksum, 2)
    _put(buffer, l4[icmp] + 2, _checksum(_word_sum(buffer, l4[icmp], l4_length[icmp])), 2)


def pcap_header() -> bytes:
    """Build the pcap file header (nanosecond magic, Ethernet link type) with dpkt."""
    handle = io.BytesIO()
    dpkt.pcap.Writer(handle, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB, nano=True)
    return handle.getvalue()


# Files -----------------------------------------------------------------------

_ROWS: dict[str, Callable[[PacketBatch], bytes]] = {
    "record-csv": record_csv_rows, "darkvec-csv": darkvec_csv_rows, "csv": marx_csv_rows,
    "jsonl": jsonl_rows, "zeek-conn": zeek_rows, "pcap": pcap_records,
}
_HEADERS: dict[str, Callable[[int], bytes]] = {
    "record-csv": lambda _: (RECORD_CSV_HEADER + "\n").encode(),
    "darkvec-csv": lambda _: (DARKVEC_HEADER + "\n").encode(),
    "csv": lambda _: (MARX_HEADER + "\n").encode(),
    "jsonl": lambda _: b"",
    "zeek-conn": zeek_header,
    "pcap": lambda _: pcap_header(),
}


class TrafficFile:
    """One output file of one format; gzip-compressed when the name ends in ``.gz``."""

    def __init__(self, path: Path, format_name: str, open_ns: int) -> None:
        self.path = path
        self.format = check_format(format_name)
        self.records = 0
        raw: BinaryIO = open(path, "wb")
        if path.name.endswith(".gz"):
            # No file name and mtime 0 in the gzip header keep the bytes reproducible.
            self._raw: BinaryIO | None = raw
            self._handle: BinaryIO = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)  # type: ignore[assignment]
        else:
            self._raw = None
            self._handle = raw
        self._handle.write(_HEADERS[format_name](open_ns))

    def write(self, batch: PacketBatch) -> None:
        self._handle.write(_ROWS[self.format](batch))
        self.records += len(batch)

    def close(self, close_ns: int) -> None:
        if self.format == "zeek-conn":
            self._handle.write(zeek_footer(close_ns))
        self._handle.close()
        if self._raw is not None:
            self._raw.close()


def encode_batch(batch: PacketBatch, format_name: str = "record-csv") -> bytes:
    """Encode a batch as rows of ``format_name`` (no file header), e.g. for a Kafka message."""
    return _ROWS[check_format(format_name)](batch)
