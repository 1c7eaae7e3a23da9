from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from darkvec_stream.ingest.address import (
    AddressCache,
    canonical_address,
    canonical_address_or_integer,
    ipv4_from_integer,
    ipv6_from_bytes,
)
from darkvec_stream.ingest.errors import RecordError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::ffff:c000:0207", "192.0.2.7"),
        ("::1", "::1"),
    ],
)
def test_canonical_address_forms(text: str, expected: str) -> None:
    assert canonical_address(text) == expected


@pytest.mark.parametrize(
    "text", ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "", "1.2.3.-4", "fe80::1%eth0", "2001:db8::g", "١.٢.٣.٤"]
)
def test_invalid_addresses_rejected(text: str) -> None:
    with pytest.raises(RecordError) as raised:
        canonical_address(text, allow_token=True)
    assert raised.value.reason == "bad_address"
    assert repr(text) in raised.value.detail


def test_tokens_only_when_allowed() -> None:
    assert canonical_address("src_ipaddr12", allow_token=True) == "src_ipaddr12"
    with pytest.raises(RecordError):
        canonical_address("src_ipaddr12")


def test_integer_ipv4() -> None:
    assert ipv4_from_integer("1032051418") == "61.131.218.218"
    assert ipv4_from_integer("0") == "0.0.0.0"
    assert ipv4_from_integer("4294967295") == "255.255.255.255"
    assert ipv4_from_integer("16909060.0") == "1.2.3.4"
    assert canonical_address_or_integer("16909060") == "1.2.3.4"


@pytest.mark.parametrize("text", ["4294967296", "-1", "1e9", "abc"])
def test_integer_ipv4_invalid(text: str) -> None:
    with pytest.raises(RecordError) as raised:
        ipv4_from_integer(text)
    assert raised.value.reason == "bad_address"


def test_ipv6_bytes_maps_ipv4() -> None:
    assert ipv6_from_bytes(ipaddress.IPv6Address("::ffff:10.0.0.1").packed) == "10.0.0.1"
    assert ipv6_from_bytes(ipaddress.IPv6Address("2001:db8::5").packed) == "2001:db8::5"


@given(st.ip_addresses())
def test_canonical_matches_ipaddress(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    expected = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    assert canonical_address(address.exploded) == str(expected)
    assert canonical_address(str(address)) == str(expected)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_integer_matches_ipaddress(value: int) -> None:
    assert ipv4_from_integer(str(value)) == str(ipaddress.IPv4Address(value))


def test_cache_interns_and_stays_bounded() -> None:
    cache = AddressCache(max_entries=2)
    first = cache.canonical("2001:db8::0:1")
    assert cache.canonical("2001:db8::0:1") is first
    for text in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        cache.canonical(text)
    assert len(cache._canonical) <= 2
