from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.ingest import read_file
from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import HEADER, WireDecoder, encode_record, encode_records, write_file

ORIGIN = Origin("dns-topic", partition=2, offset=40)

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(lambda a: a.compressed)
tokens = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
senders = st.one_of(ipv4, ipv6, tokens)


def optional(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), strategy)


records = st.builds(
    Record,
    ts_ns=st.integers(0, 2**63 - 1),
    src=senders,
    dst=st.one_of(st.none(), senders),
    src_port=optional(st.integers(0, 65535)),
    dst_port=optional(st.integers(0, 65535)),
    proto=optional(st.integers(0, 255)),
    length=optional(st.integers(0, 2**40)),
    tcp_flags=optional(st.integers(0, 0xFFF)),
    ttl=optional(st.integers(0, 255)),
    tcp_seq=optional(st.integers(0, 2**32 - 1)),
    packets=st.integers(0, 2**40),
    mirai=st.one_of(st.none(), st.booleans()),
)


@given(records)
def test_round_trip_one_record(record: Record) -> None:
    decoded, rejects = WireDecoder().decode_message(encode_record(record), ORIGIN)
    assert rejects == []
    assert decoded == [record]


@settings(max_examples=30)
@given(st.lists(records, min_size=1, max_size=300))
def test_round_trip_batch_both_paths(batch: list[Record]) -> None:
    payload = encode_records(batch)
    line_path = WireDecoder(columnar=False).decode_message(payload, ORIGIN)
    column_path = WireDecoder(columnar_min_bytes=1).decode_message(payload, ORIGIN)
    assert line_path == (batch, [])
    assert column_path == (batch, [])


def test_header_and_line_format() -> None:
    assert HEADER == "ts_ns,src,dst,src_port,dst_port,proto,length,tcp_flags,ttl,tcp_seq,packets,mirai"
    record = Record(5, "192.0.2.1", None, None, 23, 6, 60, 2, 50, 3221225985, 1, True)
    assert encode_record(record) == b"5,192.0.2.1,,,23,6,60,2,50,3221225985,1,1"


@pytest.mark.parametrize(
    ("line", "reason", "named"),
    [
        (b"5,192.0.2.1,,,23,6,60,2,50,1,1", "malformed", "12"),
        (b"-5,192.0.2.1,,,23,6,60,2,50,1,1,", "bad_timestamp", "ts_ns"),
        (b"x,192.0.2.1,,,23,6,60,2,50,1,1,", "bad_timestamp", "ts_ns"),
        (b"5,,,,23,6,60,2,50,1,1,", "bad_address", "src"),
        (b"5,300.1.1.1,,,23,6,60,2,50,1,1,", "bad_address", "300.1.1.1"),
        (b"5,192.0.2.1,,,65536,6,60,2,50,1,1,", "bad_port", "dst_port"),
        (b"5,192.0.2.1,,-1,23,6,60,2,50,1,1,", "bad_port", "src_port"),
        (b"5,192.0.2.1,,,23,256,60,2,50,1,1,", "bad_field", "proto"),
        (b"5,192.0.2.1,,,23,6,60,2,50,4294967296,1,", "bad_field", "tcp_seq"),
        (b"5,192.0.2.1,,,23,6,60,2,50,1,1,2", "bad_field", "mirai"),
        (b"5,192.0.2.1,,,+23,6,60,2,50,1,1,", "bad_port", "dst_port"),
        (b"5,192.0.2.1,,,23,6,60,2,50,1,,", "bad_field", "packets"),
    ],
)
def test_reject_reasons(line: bytes, reason: str, named: str) -> None:
    records, rejects = WireDecoder().decode_message(line, ORIGIN)
    assert records == []
    assert len(rejects) == 1
    assert rejects[0].reason == reason
    assert named in rejects[0].detail
    assert rejects[0].raw == line
    assert rejects[0].origin == ORIGIN._replace(line=1)


def test_blank_lines_skipped_and_numbered() -> None:
    payload = b"\n1,10.0.0.1,,,,,,,,,1,\r\n  \nbad\n2,10.0.0.2,,,,,,,,,1,\n"
    records, rejects = WireDecoder().decode_message(payload, ORIGIN)
    assert [record.src for record in records] == ["10.0.0.1", "10.0.0.2"]
    assert [rejected.origin.line for rejected in rejects] == [4]


def test_columnar_falls_back_on_bad_row() -> None:
    rng = random.Random(7)
    good = [Record(i, f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", None, None, 80, 6) for i in range(5000)]
    lines = encode_records(good).split(b"\n")
    lines.insert(2500, b"9,10.0.0.1,,,99999,6,,,,,1,")
    records, rejects = WireDecoder(columnar_min_bytes=1).decode_message(b"\n".join(lines), ORIGIN)
    assert records == good
    assert [(rejected.reason, rejected.origin.line) for rejected in rejects] == [("bad_port", 2501)]


def test_file_round_trip_keeps_order(tmp_path) -> None:
    rng = random.Random(3)
    batch = [Record(i, f"192.0.2.{rng.randrange(256)}", "198.51.100.1", 1, 2, 17) for i in range(20_000)]
    path = tmp_path / "records.csv"
    assert write_file(path, batch) == len(batch)
    with open(path, "ab") as handle:
        handle.write(b"oops\n")
    items = list(read_file(path, "record-csv"))
    assert items[:-1] == batch
    assert isinstance(items[-1], Rejected)
    assert items[-1].origin.line == len(batch) + 2


def test_tokens_can_be_refused() -> None:
    records, rejects = WireDecoder(allow_tokens=False).decode_message(b"1,src_ipaddr3,,,,,,,,,1,", ORIGIN)
    assert records == []
    assert rejects[0].reason == "bad_address"


@pytest.mark.parametrize("number", ["+23", " 23", "2_3", "٢٣"])
def test_lenient_integers_rejected_with_warm_cache(number: str) -> None:
    decoder = WireDecoder()
    decoder.decode_message(b"1,192.0.2.1,,,23,6,,,,,1,", ORIGIN)
    records, rejects = decoder.decode_message(f"1,192.0.2.1,,,{number},6,,,,,1,".encode(), ORIGIN)
    assert records == []
    assert rejects[0].reason == "bad_port"


def test_length_above_int64_rejected_on_both_paths() -> None:
    line = f"1,192.0.2.1,,,23,6,{2**64},,,,1,".encode()
    for decoder in (WireDecoder(columnar=False), WireDecoder(columnar_min_bytes=1)):
        decoder.decode_message(b"1,192.0.2.1,,,23,6,,,,,1,", ORIGIN)
        records, rejects = decoder.decode_message(line, ORIGIN)
        assert records == []
        assert rejects[0].reason == "bad_field"
