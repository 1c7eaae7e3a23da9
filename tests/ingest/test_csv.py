from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest import get_decoder, read_file
from darkvec_stream.ingest.record import Origin, Record, Rejected
from tests.ingest.conftest import DARKVEC_DAYS, MARX, need

ORIGIN = Origin("feed", partition=0, offset=1)


def split(items: list[Record | Rejected]) -> tuple[list[Record], list[Rejected]]:
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Rejected)]


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_marx_real_file_counts() -> None:
    records, rejects = split(list(read_file(need(MARX), "csv", preset="marx-iptables")))
    assert len(records) + len(rejects) == 451_581
    assert rejects == []
    assert len({record.src for record in records}) == 69_602
    protocols = Counter(record.proto for record in records)
    assert protocols == {6: 327_991, 17: 78_779, 1: 44_811}
    first = records[0]
    assert first == Record(1362347639 * 10**9, "61.131.218.218", "groucho-oregon", 6000, 1433, 6)
    assert all(record.dst_port is None for record in records if record.proto == 1)


def test_marx_preset_messages_without_header() -> None:
    decoder = get_decoder("csv", preset="marx-iptables")
    payload = b"2013-03-03 23:01:45,groucho-eu,2148114514,ICMP,8,,\n2013-03-03 21:53:59,groucho-oregon,1032051418,TCP,,6000,1433"
    records, rejects = decoder.decode_message(payload, ORIGIN)
    assert rejects == []
    assert records[0] == Record(1362351705 * 10**9, "128.9.160.82", "groucho-eu", None, None, 1)
    assert records[1].dst_port == 1433


def test_bom_crlf_float_ports_nulls_quotes(tmp_path: Path) -> None:
    content = (
        "\ufefftime,source,target,sport,dport,protocol\r\n"
        "1619827200.5,192.0.2.1,198.51.100.1,443.0,80.0,tcp\r\n"
        '"1619827201","192.0.2.2","198.51.100.2",-,,"udp"\r\n'
        "\r\n"
        "1619827202,192.0.2.3,-,,23,6\r\n"
    ).encode("utf-8")
    path = write(tmp_path, "flows.csv", content)
    columns = {"ts_ns": "time", "src": "source", "dst": "target", "src_port": "sport",
               "dst_port": "dport", "proto": "protocol"}
    records, rejects = split(list(read_file(path, "csv", columns=columns)))
    assert rejects == []
    assert records == [
        Record(1619827200_500000000, "192.0.2.1", "198.51.100.1", 443, 80, 6),
        Record(1619827201_000000000, "192.0.2.2", "198.51.100.2", None, None, 17),
        Record(1619827202_000000000, "192.0.2.3", None, None, 23, 6),
    ]


@pytest.mark.parametrize(
    ("converter", "text", "expected_ns"),
    [
        ("epoch_s", "1619827200.160742", 1619827200_160742000),
        ("epoch_ms", "1619827200160.5", 1619827200_160500000),
        ("epoch_us", "1619827200160742", 1619827200_160742000),
        ("epoch_ns", "1619827200160742123", 1619827200_160742123),
        ("iso", "2021-05-01 00:00:00", 1619827200_000000000),
        ("iso", "2021-05-01T00:00:00.123456789Z", 1619827200_123456789),
        ("iso", "2021-05-01T02:00:00+02:00", 1619827200_000000000),
        ("%d/%m/%Y %H:%M:%S", "01/05/2021 00:00:01", 1619827201_000000000),
    ],
)
def test_timestamp_converters(converter: str, text: str, expected_ns: int) -> None:
    decoder = get_decoder("csv", columns={"ts_ns": 0, "src": 1}, converters={"ts_ns": converter}, header=False)
    records, rejects = decoder.decode_message(f"{text},192.0.2.1".encode(), ORIGIN)
    assert rejects == []
    assert records[0].ts_ns == expected_ns


@pytest.mark.parametrize(
    ("line", "reason", "named"),
    [
        (b"2021-13-01 00:00:00,192.0.2.1,80", "bad_timestamp", "2021-13-01"),
        (b"yesterday,192.0.2.1,80", "bad_timestamp", "yesterday"),
        (b"2021-05-01 00:00:00,192.0.2.300,80", "bad_address", "192.0.2.300"),
        (b"2021-05-01 00:00:00,192.0.2.1,70000", "bad_port", "70000"),
        (b"2021-05-01 00:00:00,192.0.2.1,80.5", "bad_port", "80.5"),
        (b"2021-05-01 00:00:00,192.0.2.1", "malformed", "3"),
        (b"2021-05-01 00:00:00,-,80", "bad_address", "src"),
        (b"-,192.0.2.1,80", "bad_timestamp", "ts_ns"),
    ],
)
def test_csv_reject_reasons(line: bytes, reason: str, named: str) -> None:
    decoder = get_decoder("csv", columns={"ts_ns": 0, "src": 1, "dst_port": 2},
                          converters={"ts_ns": "iso"}, header=False)
    records, rejects = decoder.decode_message(line, ORIGIN)
    assert records == []
    assert rejects[0].reason == reason
    assert named in rejects[0].detail


def test_integer_and_any_address_converters() -> None:
    decoder = get_decoder("csv", columns={"ts_ns": 0, "src": 1, "dst": 2},
                          converters={"src": "integer_address", "dst": "any_address"}, header=False)
    records, rejects = decoder.decode_message(b"1,3232235777,167772161\n1,10.0.0.1,2001:db8::1", ORIGIN)
    assert records == [Record(10**9, "192.168.1.1", "10.0.0.1")]
    assert rejects[0].reason == "bad_address"
    assert "10.0.0.1" in rejects[0].detail


def test_tokens_refused_by_default_in_csv() -> None:
    decoder = get_decoder("csv", columns={"ts_ns": 0, "src": 1}, header=False)
    records, rejects = decoder.decode_message(b"1,src_ipaddr1", ORIGIN)
    assert records == []
    assert rejects[0].reason == "bad_address"
    allowing = get_decoder("csv", columns={"ts_ns": 0, "src": 1}, header=False, allow_tokens=True)
    assert allowing.decode_message(b"1,src_ipaddr1", ORIGIN)[0][0].src == "src_ipaddr1"


def test_config_errors_name_value() -> None:
    with pytest.raises(ConfigError, match="'nope'.*marx-iptables"):
        get_decoder("csv", preset="nope")
    with pytest.raises(ConfigError, match="ts_ns"):
        get_decoder("csv", columns={"src": 0})
    with pytest.raises(ConfigError, match="'when'"):
        get_decoder("csv", columns={"ts_ns": 0, "src": 1, "when": 2})
    with pytest.raises(ConfigError, match="'epoch_h'"):
        get_decoder("csv", columns={"ts_ns": 0, "src": 1}, converters={"ts_ns": "epoch_h"})
    with pytest.raises(ConfigError, match="'dotted'"):
        get_decoder("csv", columns={"ts_ns": 0, "src": 1}, converters={"src": "dotted"})


def test_missing_header_column_raises(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", b"time,addr\n1,192.0.2.1\n")
    with pytest.raises(InputError, match="'source'.*time, addr"):
        list(read_file(path, "csv", columns={"ts_ns": "time", "src": "source"}))


def test_darkvec_real_files() -> None:
    for path in DARKVEC_DAYS:
        records, rejects = split(list(read_file(need(path), "darkvec-csv")))
        assert len(records) + len(rejects) == 3000
        assert rejects == []
        assert sum(1 for record in records if record.mirai) in (76, 83)
        assert all(record.src.startswith("src_ipaddr") for record in records)
        assert all(record.mirai is None for record in records if record.proto != 6)
    if not DARKVEC_DAYS:
        pytest.skip("DarkVec sample not available")


def test_darkvec_exact_nanoseconds_and_tokens() -> None:
    decoder = get_decoder("darkvec-csv")
    line = (b"2021-05-01 00:00:00.204738048,1619827200.2047381,2048,src_ipaddr1,57026,dst_ipaddr1,"
            b"23,6,60,2,1,857973134,235,-,-,-,-,-")
    records, rejects = decoder.decode_message(line, ORIGIN)
    assert rejects == []
    assert records[0] == Record(1619827200_204738100, "src_ipaddr1", "dst_ipaddr1", 57026, 23, 6, 60, 2, 235,
                                857973134, 1, True)
    icmp = b"2021-05-01 00:00:26,1619827226.05845,2048,src_ipaddr151,-,dst_ipaddr48,-,1,98,-,-,-,47,-,-,-,-,-"
    assert decoder.decode_message(icmp, ORIGIN)[0][0].mirai is None


def test_darkvec_header_by_name_reordered(tmp_path: Path) -> None:
    content = b"ts,src_ip,dst_ip,proto,dst_port\n1619827200.5,10.0.0.1,10.0.0.2,17,53\n"
    path = tmp_path / "reordered.csv.gz"
    path.write_bytes(gzip.compress(content))
    assert list(read_file(path, "darkvec-csv")) == [Record(1619827200_500000000, "10.0.0.1", "10.0.0.2", None, 53, 17)]
