from __future__ import annotations

import pytest

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.record import Origin, Record

ORIGIN = Origin("flows", partition=1, offset=9)


def test_goflow2_preset() -> None:
    line = (b'{"type":"IPFIX","time_received_ns":1767324720787460121,"sequence_num":1,'
            b'"time_flow_start_ns":1767324720000000000,"bytes":143,"packets":2,"src_addr":"192.168.89.2",'
            b'"dst_addr":"192.168.88.30","etype":"IPv4","proto":"TCP","src_port":53,"dst_port":55743,'
            b'"tcp_flags":18,"ip_ttl":61}')
    records, rejects = get_decoder("jsonl", preset="goflow2").decode_message(line, ORIGIN)
    assert rejects == []
    assert records == [Record(1767324720_000000000, "192.168.89.2", "192.168.88.30", 53, 55743, 6, 143, 18, 61,
                              None, 2)]


def test_goflow2_zero_start_uses_received() -> None:
    line = b'{"time_received_ns":5000,"time_flow_start_ns":0,"src_addr":"fd01::1","proto":6}'
    records, _ = get_decoder("jsonl", preset="goflow2").decode_message(line, ORIGIN)
    assert records[0].ts_ns == 5000
    assert records[0].src == "fd01::1"


def test_pmacct_preset_text_and_epoch_times() -> None:
    decoder = get_decoder("jsonl", preset="pmacct")
    lines = (b'{"ip_src":"10.0.0.1","ip_dst":"10.0.0.2","port_src":1234,"port_dst":80,"ip_proto":"tcp",'
             b'"tcp_flags":"2","timestamp_start":"2019-05-06 10:01:02.123456","packets":1,"bytes":60}\n'
             b'{"ip_src":"10.0.0.3","ip_proto":"udp","stamp_inserted":"1557136862.5","packets":4}')
    records, rejects = decoder.decode_message(lines, ORIGIN)
    assert rejects == []
    assert records[0] == Record(1557136862_123456000, "10.0.0.1", "10.0.0.2", 1234, 80, 6, 60, 2)
    assert records[1].ts_ns == 1557136862_500000000
    assert records[1].packets == 4


def test_zeek_json_preset_icmp_drops_ports() -> None:
    line = (b'{"ts":1300475167.096535,"uid":"C1","id.orig_h":"::ffff:141.142.220.202","id.orig_p":8,'
            b'"id.resp_h":"2001:DB8::1","id.resp_p":0,"proto":"icmp","orig_pkts":2,"orig_ip_bytes":168}')
    records, rejects = get_decoder("jsonl", preset="zeek-json").decode_message(line, ORIGIN)
    assert rejects == []
    assert records == [Record(1300475167_096535000, "141.142.220.202", "2001:db8::1", None, None, 1, 168, None,
                              None, None, 2)]


def test_nested_paths_and_alternatives() -> None:
    decoder = get_decoder("jsonl", fields={"ts_ns": ["event.start", "event.seen"], "src": "source.ip",
                                           "dst_port": "destination.port"},
                          converters={"ts_ns": "iso"})
    line = b'{"event":{"seen":"2021-05-01T00:00:00Z"},"source":{"ip":"192.0.2.9"},"destination":{"port":"443"}}'
    records, rejects = decoder.decode_message(line, ORIGIN)
    assert rejects == []
    assert records == [Record(1619827200 * 10**9, "192.0.2.9", None, None, 443)]


@pytest.mark.parametrize(
    ("line", "reason", "named"),
    [
        (b"{not json", "malformed", "invalid JSON"),
        (b"[1, 2]", "malformed", "list"),
        (b'{"src_addr":"10.0.0.1"}', "bad_timestamp", "ts_ns"),
        (b'{"time_received_ns":1,"src_addr":"10.0.0.999"}', "bad_address", "10.0.0.999"),
        (b'{"time_received_ns":1,"src_addr":"10.0.0.1","dst_port":-3}', "bad_port", "-3"),
        (b'{"time_received_ns":"soon","src_addr":"10.0.0.1"}', "bad_timestamp", "soon"),
        (b'{"time_received_ns":{"a":1},"src_addr":"10.0.0.1"}', "bad_timestamp", "ts_ns"),
        (b'{"time_received_ns":1,"src_addr":["10.0.0.1"]}', "bad_address", "src"),
        (b'{"time_received_ns":1,"src_addr":"10.0.0.1","proto":"bogus"}', "bad_field", "bogus"),
    ],
)
def test_jsonl_reject_reasons(line: bytes, reason: str, named: str) -> None:
    records, rejects = get_decoder("jsonl", preset="goflow2").decode_message(line, ORIGIN)
    assert records == []
    assert rejects[0].reason == reason
    assert named in rejects[0].detail
    assert rejects[0].origin == ORIGIN._replace(line=1)


def test_jsonl_config_errors() -> None:
    with pytest.raises(ConfigError, match="'netflow'.*goflow2"):
        get_decoder("jsonl", preset="netflow")
    with pytest.raises(ConfigError, match="src"):
        get_decoder("jsonl", fields={"ts_ns": "t"})
    with pytest.raises(ConfigError, match="path for dst"):
        get_decoder("jsonl", preset="goflow2", fields={"dst": []})
