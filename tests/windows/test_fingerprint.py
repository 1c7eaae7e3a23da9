"""Tests of the Mirai fingerprint and the IPv4 parser it relies on."""

from __future__ import annotations

import ipaddress

import numpy as np

from hypothesis import given
from hypothesis import strategies as st

from darkvec_stream.ingest.record import PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_SYN, Record
from darkvec_stream.windows.fingerprint import ipv4_to_int, is_mirai, mirai_mask

DST = "192.0.2.1"
DST_INT = 0xC0000201


def syn(**fields: object) -> Record:
    values: dict[str, object] = {
        "ts_ns": 0,
        "src": "198.51.100.7",
        "dst": DST,
        "dst_port": 23,
        "proto": PROTO_TCP,
        "tcp_flags": TCP_SYN,
        "tcp_seq": DST_INT,
    }
    values.update(fields)
    return Record(**values)  # type: ignore[arg-type]


def test_ipv4_to_int_values() -> None:
    assert ipv4_to_int("192.0.2.1") == DST_INT
    assert ipv4_to_int("0.0.0.0") == 0
    assert ipv4_to_int("255.255.255.255") == 0xFFFFFFFF


def test_ipv4_to_int_rejects_non_ipv4() -> None:
    for text in ("2001:db8::1", "src_ipaddr7", "1.2.3", "1.2.3.4.5", "1.2.3.256", "1.2.3.-4", "1.2.3.²", "", "1..2.3"):
        assert ipv4_to_int(text) is None, text


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_ipv4_to_int_matches_ipaddress(value: int) -> None:
    assert ipv4_to_int(str(ipaddress.IPv4Address(value))) == value


def test_mirai_syn_with_matching_sequence() -> None:
    assert is_mirai(syn())


def test_mirai_requires_syn_without_ack() -> None:
    assert not is_mirai(syn(tcp_flags=TCP_SYN | TCP_ACK))
    assert not is_mirai(syn(tcp_flags=TCP_ACK))
    assert not is_mirai(syn(tcp_flags=None))


def test_mirai_requires_equal_sequence() -> None:
    assert not is_mirai(syn(tcp_seq=DST_INT + 1))
    assert not is_mirai(syn(tcp_seq=None))


def test_mirai_requires_tcp_and_ipv4() -> None:
    assert not is_mirai(syn(proto=PROTO_UDP))
    assert not is_mirai(syn(proto=None))
    assert not is_mirai(syn(dst="2001:db8::1"))
    assert not is_mirai(syn(dst=None))


def test_mirai_flag_from_source_wins() -> None:
    assert is_mirai(syn(mirai=True, tcp_seq=None, dst="dst_ipaddr3"))
    assert not is_mirai(syn(mirai=False))


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.integers(min_value=0, max_value=0xFF))
def test_mirai_any_destination(address: int, extra_flags: int) -> None:
    flags = (extra_flags | TCP_SYN) & ~TCP_ACK
    record = syn(dst=str(ipaddress.IPv4Address(address)), tcp_seq=address, tcp_flags=flags)
    assert is_mirai(record)
    assert not is_mirai(record._replace(tcp_seq=(address + 1) % (1 << 32)))


def _column(values: list[object]) -> np.ndarray:
    return np.array([-1 if value is None else value for value in values], dtype=np.int64)


@given(
    st.lists(
        st.builds(
            syn,
            dst=st.sampled_from([DST, "192.0.2.2", "2001:db8::1", "token7", None]),
            proto=st.sampled_from([PROTO_TCP, PROTO_UDP, None]),
            tcp_flags=st.one_of(st.none(), st.integers(0, 0xFF)),
            tcp_seq=st.sampled_from([None, 0, DST_INT, DST_INT + 1, 0xC0000202]),
            mirai=st.sampled_from([None, True, False]),
        ),
        max_size=40,
    )
)
def test_mirai_mask_matches_is_mirai(records: list[Record]) -> None:
    mask = mirai_mask(
        _column([record.mirai for record in records]),
        _column([record.proto for record in records]),
        _column([record.tcp_flags for record in records]),
        _column([record.tcp_seq for record in records]),
        [record.dst for record in records],
    )
    assert mask.tolist() == [is_mirai(record) for record in records]
