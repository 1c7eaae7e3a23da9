"""Integer forms of IPv4/IPv6 addresses and prefixes for fast label lookups.

A network is the key ``(version, prefix_len, prefix)`` where ``prefix`` is the
address shifted right by the host bits, so a lookup is one shift and one dict
get per prefix length. IPv4-mapped IPv6 addresses count as IPv4. Anything
that is not an address (for example the ``src_ipaddr3`` tokens of anonymised
traces) has no integer form and never matches a prefix.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

ADDRESS_BITS = {4: 32, 6: 128}
_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


class NetworkKey(NamedTuple):
    """One prefix: IP version, prefix length in bits and the prefix bits."""

    version: int
    prefix_len: int
    prefix: int


def parse_address(text: str) -> tuple[int, int] | None:
    """Return ``(version, integer)`` for an address string, None for anything else."""
    # inet_pton is strict (four decimal parts for IPv4) and about ten times
    # faster than the ipaddress classes, which matters for per-sender lookups.
    try:
        if ":" in text:
            packed = socket.inet_pton(socket.AF_INET6, text)
            if packed[:12] == _IPV4_MAPPED_PREFIX:
                return 4, int.from_bytes(packed[12:], "big")
            return 6, int.from_bytes(packed, "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, TypeError):
        return None


def parse_network(text: str) -> NetworkKey:
    """Parse an address or CIDR (host bits allowed and dropped); raise ValueError."""
    if "/" not in text:
        parsed = parse_address(text)
        if parsed is None:
            raise ValueError(f"not an IP address or CIDR: {text!r}")
        version, value = parsed
        bits = ADDRESS_BITS[version]
        return NetworkKey(version, bits, value)
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            prefix_len = network.prefixlen - 96
            return NetworkKey(4, prefix_len, int(mapped) >> (32 - prefix_len))
    bits = ADDRESS_BITS[network.version]
    prefix_len = network.prefixlen
    return NetworkKey(network.version, prefix_len, int(network.network_address) >> (bits - prefix_len))


def format_network(key: NetworkKey) -> str:
    """Return the compressed text form of a network key (``1.2.3.0/24``, ``2001:db8::/32``)."""
    bits = ADDRESS_BITS[key.version]
    value = key.prefix << (bits - key.prefix_len)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    if key.version == 4:
        address = ipaddress.IPv4Address(value)
    else:
        address = ipaddress.IPv6Address(value)
    if key.prefix_len == bits:
        return str(address)
    return f"{address}/{key.prefix_len}"
