"""Sender addresses for simulated populations, disjoint between populations.

Addresses come from two reserved, non-routed IPv4 blocks so that no
generated record names a real host. Scanner organisations own /24 subnets
of the benchmarking block 198.18.0.0/15 (RFC 2544). Everything else is
spread over the shared address space 100.64.0.0/10 (RFC 6598). Both look
like ordinary public addresses to the pipeline. This module does not check
the telescope prefix; configuration validation does.
"""

from __future__ import annotations

import ipaddress
import logging

import numpy as np

from darkvec_stream.errors import ConfigError

logger = logging.getLogger(__name__)

LANE_ADDRESSES = 1 << 16
SLOT_SUBNETS = 16
_HOSTS_PER_SUBNET = 254


def _scramble(index: np.ndarray, bits: int) -> np.ndarray:
    """Map indices through a fixed bijection of ``[0, 2**bits)`` to scatter them.

    An odd multiplier and xor-shifts are each invertible modulo a power of
    two, so distinct lanes stay distinct after scrambling.
    """
    mask = np.uint64((1 << bits) - 1)
    # The offset keeps index 0 away from the block's network address.
    value = (index.astype(np.uint64) + np.uint64(0x5BD1E995)) & mask
    for multiplier in (0x9E3779B1, 0x85EBCA77):
        value = (value * np.uint64(multiplier)) & mask
        value ^= value >> np.uint64(max(bits // 2, 1))
    return value


class SpreadSpace:
    """Hands out addresses scattered over a large block, one lane range per population.

    A population that owns lanes ``[first, first + count)`` gets addresses
    ``scramble(first * 65536 + j)``. When a run needs more than its lanes
    hold, numbering wraps around and addresses are reused. A warning is
    logged because reused addresses merge senders that should be distinct.
    """

    def __init__(self, cidr: str) -> None:
        network = ipaddress.IPv4Network(cidr, strict=True)
        self._base = int(network.network_address)
        self._bits = 32 - network.prefixlen
        if self._bits < 16:
            raise ConfigError(f"invalid sender_space {cidr}: it must be a /16 or larger block")
        self.lanes = network.num_addresses // LANE_ADDRESSES
        self._next_lane = 0

    def reserve(self, name: str, lanes: int) -> tuple[int, int]:
        """Reserve ``lanes`` consecutive lanes for population ``name``."""
        if lanes < 1 or self._next_lane + lanes > self.lanes:
            raise ConfigError(
                f"population {name!r} asks for {lanes} address lanes but only "
                f"{self.lanes - self._next_lane} of {self.lanes} remain in the sender space; "
                "lower its lanes or use a larger sender_space"
            )
        first = self._next_lane
        self._next_lane += lanes
        return first, lanes

    def addresses(self, name: str, lane_range: tuple[int, int], indices: np.ndarray) -> np.ndarray:
        first, count = lane_range
        capacity = count * LANE_ADDRESSES
        if indices.size and int(indices.max()) >= capacity:
            logger.warning(
                "population %s needs %s addresses but its lanes hold %s; addresses are reused",
                name, int(indices.max()) + 1, capacity,
            )
        global_index = first * LANE_ADDRESSES + (indices % capacity)
        offsets = _scramble(global_index, self._bits)
        return (np.uint64(self._base) + offsets).astype(np.uint32)


class SubnetSpace:
    """Hands out whole /24 subnets, a slot of 16 per organisation."""

    def __init__(self, cidr: str) -> None:
        network = ipaddress.IPv4Network(cidr, strict=True)
        if network.prefixlen > 20:
            raise ConfigError(f"invalid scanner_space {cidr}: it must be a /20 or larger block")
        self._base = int(network.network_address)
        self._subnet_bits = 24 - network.prefixlen
        self.slots = (1 << self._subnet_bits) // SLOT_SUBNETS
        self._next_slot = 0

    def addresses(self, name: str, subnets: int, senders: int, rng: np.random.Generator) -> np.ndarray:
        """Place ``senders`` distinct hosts in ``subnets`` /24s of a fresh slot."""
        if not 1 <= subnets <= SLOT_SUBNETS:
            raise ConfigError(f"invalid subnets {subnets} for {name!r}: use 1 to {SLOT_SUBNETS}")
        if senders > subnets * _HOSTS_PER_SUBNET:
            raise ConfigError(
                f"population {name!r} has {senders} senders but {subnets} /24 subnets hold at most "
                f"{subnets * _HOSTS_PER_SUBNET}; raise subnets"
            )
        if self._next_slot >= self.slots:
            raise ConfigError(f"no scanner subnets left for {name!r}; use a larger scanner_space")
        slot = self._next_slot
        self._next_slot += 1
        subnet_index = _scramble(np.arange(slot * SLOT_SUBNETS, slot * SLOT_SUBNETS + subnets), self._subnet_bits)
        host_slots = rng.choice(subnets * _HOSTS_PER_SUBNET, size=senders, replace=False)
        subnet = subnet_index[host_slots // _HOSTS_PER_SUBNET]
        host = host_slots % _HOSTS_PER_SUBNET + 1
        return (np.uint64(self._base) + (subnet << np.uint64(8)) + host.astype(np.uint64)).astype(np.uint32)


def format_ipv4(addresses: np.ndarray) -> list[str]:
    """Format unsigned 32-bit addresses as dotted strings."""
    return [str(ipaddress.IPv4Address(int(value))) for value in addresses]
