"""Port specifications of simulated populations (``"23/tcp"``, ``"53/udp"``, ``"icmp"``).

This module parses specs and draws ports from weighted port sets; it knows
nothing about populations or schedules.
"""

from __future__ import annotations

import numpy as np

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP

_PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP}
NO_PORT = -1


def parse_port(spec: str) -> tuple[int, int]:
    """Return ``(port, protocol number)`` for a spec; ICMP has port ``NO_PORT``."""
    text = spec.strip().lower()
    if text == "icmp":
        return NO_PORT, PROTO_ICMP
    number, _, protocol = text.partition("/")
    if protocol not in _PROTOCOLS or not number.isdigit() or not 0 < int(number) < 65536:
        raise ConfigError(f"invalid port {spec!r}: use PORT/tcp, PORT/udp (1-65535) or icmp")
    return int(number), _PROTOCOLS[protocol]


class PortTable:
    """Weighted port sets ("profiles") packed in flat arrays for vectorised draws.

    Profile ``p`` covers ``ports[offsets[p]:offsets[p + 1]]``; a draw for a
    packet of profile ``p`` searches ``p + u`` in the cumulative weights
    shifted by the profile number, so all packets are drawn in one call.
    """

    def __init__(self) -> None:
        self._ports: list[int] = []
        self._protocols: list[int] = []
        self._cumulative: list[float] = []
        self._profiles = 0

    @property
    def profiles(self) -> int:
        return self._profiles

    def add(self, specs: tuple[str, ...] | list[str], weights: tuple[float, ...] | list[float] = ()) -> int:
        """Add one port set and return its profile number."""
        parsed = [parse_port(spec) for spec in specs]
        return self.add_parsed(parsed, weights)

    def add_parsed(self, parsed: list[tuple[int, int]], weights: tuple[float, ...] | list[float] = ()) -> int:
        if not parsed:
            raise ConfigError("a port set must contain at least one port")
        values = np.asarray(weights if len(weights) else [1.0] * len(parsed), dtype=np.float64)
        cumulative = np.cumsum(values / values.sum())
        cumulative[-1] = 1.0
        profile = self._profiles
        for (port, protocol), share in zip(parsed, cumulative):
            self._ports.append(port)
            self._protocols.append(protocol)
            # Shifted by the profile number so one searchsorted serves every profile.
            self._cumulative.append(profile + float(share))
        self._profiles += 1
        return profile

    def freeze(self) -> None:
        self._port_array = np.asarray(self._ports, dtype=np.int32)
        self._protocol_array = np.asarray(self._protocols, dtype=np.uint8)
        self._cumulative_array = np.asarray(self._cumulative, dtype=np.float64)

    def draw(self, profile: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw one ``(port, protocol)`` per packet from each packet's profile."""
        position = profile + rng.random(profile.size) * (1 - 1e-12)
        index = np.searchsorted(self._cumulative_array, position, side="right")
        return self._port_array[index], self._protocol_array[index]
