"""Services ("languages"): which sentence of a window a packet belongs to.

A service groups destination ``port/proto`` pairs. Four modes exist:
``single`` (one service), ``auto`` (the top-N pairs by decayed packet
count), ``domain`` (a documented port map plus catch-alls) and ``hybrid``
(the port map first, then top-N, then catch-alls). This module maps keys to
service names; it does not read records or build sentences.

Every record is reduced to an integer *service key* (see ``service_key``):
TCP ports, UDP ports, then one key per IP protocol number for packets
without a usable port. Each mode turns the window's key counts into a
``ServicePlan``, a dense lookup table from key to service name.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

logger = logging.getLogger(__name__)

PORT_COUNT = 65536
TCP_KEY_BASE = 0
UDP_KEY_BASE = PORT_COUNT
PROTO_KEY_BASE = 2 * PORT_COUNT
UNKNOWN_PROTO_KEY = PROTO_KEY_BASE + 256
KEY_COUNT = UNKNOWN_PROTO_KEY + 1

SERVICE_MODES = ("single", "auto", "domain", "hybrid")
SINGLE_SERVICE = "all"
AUTO_REST_SERVICE = "other"
OTHER_PROTO_SERVICE = "other-proto"
ICMP_SERVICE = "icmp"

# i-DarkVec swept N from 1 to 10,000 with incremental daily training and
# kept N = 2,500: macro F1 0.90, against 0.43-0.64 for N <= 10 (the value
# of the original DarkVec). More services only cut the same words into more
# sentences, and Word2Vec cost follows words, not sentences.
DEFAULT_TOP_N = 2500
# One week: ports that stop being scanned leave the top-N within a few
# weeks, while a daily rhythm does not reshuffle services every hour.
DEFAULT_HALF_LIFE_S = 7 * 86400
# Decayed counts below this are dropped so that dead ports cost nothing.
_PRUNE_BELOW = 1e-3

PROTO_NAMES: Mapping[int, str] = {
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    33: "dccp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    58: "icmpv6",
    132: "sctp",
}

_CATCH_ALL_RANGES = (("system", 0, 1023), ("user", 1024, 49151), ("ephemeral", 49152, 65535))

# The port map of the ``domain`` and ``hybrid`` modes. Keys are service
# names, values are port specs: "PORT", "LOW-HIGH", optionally followed by
# "/tcp" or "/udp"; a spec without a protocol covers both. The DarkVec
# authors never published their map; this one follows IANA assignments and
# the services that darknet scanning studies report most often.
DEFAULT_DOMAIN_SERVICES: dict[str, list[str]] = {
    "ftp": ["20-21/tcp", "69/udp", "990/tcp"],
    "ssh": ["22/tcp", "2222/tcp"],
    "telnet": ["23/tcp", "992/tcp", "2323/tcp"],
    "mail": ["25/tcp", "110/tcp", "143/tcp", "465/tcp", "587/tcp", "993/tcp", "995/tcp", "2525/tcp"],
    "dns": ["53", "853/tcp"],
    "http": [
        "80/tcp", "81-85/tcp", "8000-8001/tcp", "8008/tcp", "8010/tcp", "8080-8082/tcp",
        "8088/tcp", "8090/tcp", "8888/tcp", "9000/tcp", "9080/tcp", "9090/tcp",
    ],
    "https": ["443", "4443/tcp", "8443/tcp", "9443/tcp"],
    "kerberos": ["88", "464", "749/tcp"],
    "ntp": ["123/udp"],
    "rpc": ["111", "135", "593/tcp"],
    "netbios": ["137-139"],
    "snmp": ["161-162/udp"],
    "ldap": ["389", "636/tcp"],
    "smb": ["445/tcp"],
    "ics": ["102/tcp", "502/tcp", "20000/tcp", "44818", "47808/udp"],
    "printer": ["515/tcp", "631", "9100/tcp"],
    "vpn": ["500/udp", "1194", "1723/tcp", "4500/udp", "51820/udp"],
    "proxy": ["1080/tcp", "3128/tcp", "8118/tcp", "9050-9051/tcp"],
    "databases": [
        "1433/tcp", "1434/udp", "1521/tcp", "3306/tcp", "5432/tcp", "5984/tcp", "6379/tcp",
        "7474/tcp", "8086/tcp", "9042/tcp", "9200/tcp", "9300/tcp", "27017-27019/tcp",
        "50000/tcp",
    ],
    "memcached": ["11211"],
    "rdp": ["3389"],
    "winrm": ["5985-5986/tcp"],
    "discovery": ["3702/udp", "5353/udp", "5355/udp", "10001/udp"],
    "sip": ["5060-5061"],
    "adb": ["5555/tcp"],
    "vnc": ["5800/tcp", "5900-5910/tcp"],
    "containers": ["2375-2377/tcp", "6443/tcp", "10250/tcp"],
    "p2p": ["6881-6889"],
    "iot": [
        "554/tcp", "1883/tcp", "1900/udp", "5000/tcp", "5431/tcp", "5683/udp", "7547/tcp",
        "8554/tcp", "8883/tcp", "34567/tcp", "37215/tcp", "37777/tcp", "49152/tcp",
        "52869/tcp", "60001/tcp",
    ],
}

_SPEC_PATTERN = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp))?$")
_SERVICE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$")


def service_key(proto: int | None, dst_port: int | None) -> int:
    """Return the service key of one packet.

    TCP and UDP packets with a port in 0..65535 get one key per port. Every
    other packet (ICMP, later fragments, other protocols, a port out of
    range) gets the key of its IP protocol number, or the unknown-protocol
    key when the protocol is missing or not in 0..255.
    """
    if dst_port is not None and 0 <= dst_port < PORT_COUNT:
        if proto == PROTO_TCP:
            return TCP_KEY_BASE + dst_port
        if proto == PROTO_UDP:
            return UDP_KEY_BASE + dst_port
    if proto is None or not 0 <= proto <= 255:
        return UNKNOWN_PROTO_KEY
    return PROTO_KEY_BASE + proto


@lru_cache(maxsize=None)
def key_token(key: int) -> str:
    """Return the ``port/proto`` token of a key, or the protocol name for portless keys."""
    if key < UDP_KEY_BASE:
        return f"{key - TCP_KEY_BASE}/tcp"
    if key < PROTO_KEY_BASE:
        return f"{key - UDP_KEY_BASE}/udp"
    if key == UNKNOWN_PROTO_KEY:
        return "proto-unknown"
    proto = key - PROTO_KEY_BASE
    return PROTO_NAMES.get(proto, f"proto-{proto}")


class ServicePlan(NamedTuple):
    """The key-to-service mapping applied to one window.

    ``table[key]`` is an index into ``names``. Plans are shared between
    windows, so ``table`` is read-only.
    """

    names: tuple[str, ...]
    table: np.ndarray

    def service_of(self, key: int) -> str:
        return self.names[int(self.table[key])]


class ServiceMap(Protocol):
    """A service mode: turns the key counts of a closing window into a plan.

    ``plan`` is called once per window, in window order, with the packet
    count of every key in that window (a float64 array of ``KEY_COUNT``).
    The plan must depend only on the state after that call, so a restored
    map produces the same plans as one never interrupted.
    """

    mode: str

    def plan(self, key_packets: np.ndarray, window_end_ns: int) -> ServicePlan: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...


def parse_port_spec(spec: str, service: str) -> list[int]:
    """Return the service keys that one port spec such as ``"137-139/udp"`` covers."""
    match = _SPEC_PATTERN.match(spec.strip().lower()) if isinstance(spec, str) else None
    if match is None:
        raise ConfigError(
            f"invalid port spec {spec!r} for service {service!r}: "
            "use PORT or LOW-HIGH, optionally followed by /tcp or /udp"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if high >= PORT_COUNT or low > high:
        raise ConfigError(
            f"invalid port range {spec!r} for service {service!r}: "
            "ports must be in 0..65535 with LOW <= HIGH"
        )
    protocols = [match.group(3)] if match.group(3) else ["tcp", "udp"]
    keys: list[int] = []
    for protocol in protocols:
        base = TCP_KEY_BASE if protocol == "tcp" else UDP_KEY_BASE
        keys.extend(range(base + low, base + high + 1))
    return keys


def _check_service_name(name: object) -> str:
    # Names go into sentence dumps as "service<TAB>senders", so whitespace
    # would corrupt the file.
    if not isinstance(name, str) or not _SERVICE_NAME_PATTERN.match(name):
        raise ConfigError(
            f"invalid service name {name!r}: use letters, digits and . _ : / + - "
            "without spaces, starting with a letter or digit"
        )
    return name


def _catch_all_plan() -> tuple[list[str], np.ndarray]:
    """Return the names and table of the catch-all services alone."""
    names = ["tcp", "udp", ICMP_SERVICE, OTHER_PROTO_SERVICE]
    table = np.full(KEY_COUNT, names.index(OTHER_PROTO_SERVICE), dtype=np.int32)
    table[PROTO_KEY_BASE + PROTO_TCP] = names.index("tcp")
    table[PROTO_KEY_BASE + PROTO_UDP] = names.index("udp")
    table[PROTO_KEY_BASE + PROTO_ICMP] = names.index(ICMP_SERVICE)
    table[PROTO_KEY_BASE + PROTO_ICMPV6] = names.index(ICMP_SERVICE)
    for protocol, base in (("tcp", TCP_KEY_BASE), ("udp", UDP_KEY_BASE)):
        for range_name, low, high in _CATCH_ALL_RANGES:
            table[base + low : base + high + 1] = len(names)
            names.append(f"{protocol}-{range_name}")
    return names, table


def compile_domain_map(domain_map: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Validate a port map and return ``(names, table, mapped)``.

    ``mapped`` is a boolean array over keys, True where the port map (not a
    catch-all) decides the service. A port claimed by two services raises
    ``ConfigError`` naming both, because silently letting one win would make
    the map's meaning depend on dictionary order.
    """
    if not isinstance(domain_map, Mapping):
        raise ConfigError(f"invalid service port map: expected a mapping of service to port specs, got {type(domain_map).__name__}")
    names, table = _catch_all_plan()
    mapped = np.zeros(KEY_COUNT, dtype=bool)
    owner: dict[int, str] = {}
    for service, specs in domain_map.items():
        _check_service_name(service)
        if service in names:
            raise ConfigError(f"service name {service!r} is reserved for a catch-all; choose another name")
        if isinstance(specs, str) or not isinstance(specs, Sequence):
            raise ConfigError(f"invalid port list for service {service!r}: expected a list of port specs, got {specs!r}")
        service_id = len(names)
        names.append(service)
        for spec in specs:
            keys = parse_port_spec(spec, service)
            for key in keys:
                previous = owner.setdefault(key, service)
                if previous != service:
                    raise ConfigError(
                        f"port {key_token(key)} is mapped to both {previous!r} and {service!r}; "
                        "remove it from one of them"
                    )
            table[keys] = service_id
            mapped[keys] = True
    return tuple(names), table, mapped


def _read_only(table: np.ndarray) -> np.ndarray:
    table.flags.writeable = False
    return table


def _read_state_json(directory: Path, name: str) -> dict[str, object]:
    path = directory / name
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise StateError(f"missing window state file {path}: the checkpoint is incomplete") from error
    except (OSError, ValueError) as error:
        raise StateError(f"unreadable window state file {path}: {error}") from error
    if not isinstance(state, dict):
        raise StateError(f"invalid window state file {path}: expected a JSON object")
    return state


def _check_saved_mode(directory: Path, mode: str) -> dict[str, object]:
    state = _read_state_json(directory, "services.json")
    if state.get("mode") != mode:
        raise StateError(
            f"the checkpoint in {directory} was written with services mode {state.get('mode')!r} "
            f"but the configured mode is {mode!r}: use the same mode or start without that checkpoint"
        )
    return state


class SingleServices:
    """One service, ``all``, for every packet (DarkVec's single language)."""

    mode = "single"

    def __init__(self) -> None:
        self._plan = ServicePlan((SINGLE_SERVICE,), _read_only(np.zeros(KEY_COUNT, dtype=np.int32)))

    def plan(self, key_packets: np.ndarray, window_end_ns: int) -> ServicePlan:
        return self._plan

    def save(self, directory: Path) -> None:
        (directory / "services.json").write_text(json.dumps({"mode": self.mode}), encoding="utf-8")

    def load(self, directory: Path) -> None:
        _check_saved_mode(directory, self.mode)


class DomainServices:
    """Services from a fixed port map, then per-protocol catch-alls.

    TCP and UDP ports outside the map fall into ``tcp-system`` (0-1023),
    ``tcp-user`` (1024-49151), ``tcp-ephemeral`` (49152-65535) and the same
    for UDP. Portless TCP or UDP packets go to ``tcp`` or ``udp``, ICMP and
    ICMPv6 to ``icmp``, every other protocol to ``other-proto``.
    """

    mode = "domain"

    def __init__(self, domain_map: Mapping[str, Sequence[str]] = DEFAULT_DOMAIN_SERVICES) -> None:
        names, table, _ = compile_domain_map(domain_map)
        self._plan = ServicePlan(names, _read_only(table))

    def plan(self, key_packets: np.ndarray, window_end_ns: int) -> ServicePlan:
        return self._plan

    def save(self, directory: Path) -> None:
        (directory / "services.json").write_text(json.dumps({"mode": self.mode}), encoding="utf-8")

    def load(self, directory: Path) -> None:
        _check_saved_mode(directory, self.mode)


class AutoServices:
    """The top-N service keys by exponentially decayed packet count.

    Each closing window first decays the counts by ``0.5 ** (elapsed /
    half_life_s)`` and adds its own packets, then ranks keys by count (ties
    by key, so equal counts rank the same way on every run). Ranked keys
    become services named by their token (``23/tcp``, ``icmp``); the rest
    go to ``other``. Memory is one float64 per key (about 1 MiB) whatever
    the traffic. With a port map (``hybrid`` mode) mapped keys keep their
    mapped service, only unmapped keys are counted and ranked, and catch-alls
    replace ``other``.
    """

    def __init__(
        self,
        top_n: int = DEFAULT_TOP_N,
        half_life_s: float = DEFAULT_HALF_LIFE_S,
        domain_map: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= KEY_COUNT:
            raise ConfigError(f"invalid services top_n {top_n!r}: expected an integer in 1..{KEY_COUNT}")
        if not isinstance(half_life_s, (int, float)) or not math.isfinite(half_life_s) or half_life_s <= 0:
            raise ConfigError(f"invalid services half_life_s {half_life_s!r}: expected a positive number of seconds")
        self.top_n = top_n
        self.half_life_s = float(half_life_s)
        self.mode = "auto" if domain_map is None else "hybrid"
        if domain_map is None:
            self._base_names: tuple[str, ...] = (AUTO_REST_SERVICE,)
            self._base_table = np.zeros(KEY_COUNT, dtype=np.int32)
            self._eligible = np.ones(KEY_COUNT, dtype=bool)
        else:
            self._base_names, self._base_table, mapped = compile_domain_map(domain_map)
            self._eligible = ~mapped
        self._counts = np.zeros(KEY_COUNT, dtype=np.float64)
        self._last_end_ns: int | None = None
        self._last_top_keys = np.zeros(0, dtype=np.int64)
        self._last_plan: ServicePlan | None = None

    @property
    def decayed_counts(self) -> np.ndarray:
        """A read-only view of the decayed packet count per key."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    def plan(self, key_packets: np.ndarray, window_end_ns: int) -> ServicePlan:
        self._decay_to(window_end_ns)
        self._counts += np.where(self._eligible, key_packets, 0.0)
        self._counts[self._counts < _PRUNE_BELOW] = 0.0
        return self._ranked_plan()

    def _decay_to(self, window_end_ns: int) -> None:
        if self._last_end_ns is not None:
            elapsed_s = max(0, window_end_ns - self._last_end_ns) / 1e9
            self._counts *= 0.5 ** (elapsed_s / self.half_life_s)
        self._last_end_ns = window_end_ns

    def _ranked_plan(self) -> ServicePlan:
        candidates = np.flatnonzero(self._counts > 0)
        # lexsort sorts by its last key first: count descending, then key.
        order = np.lexsort((candidates, -self._counts[candidates]))
        top_keys = candidates[order[: self.top_n]]
        # The ranking rarely changes from one window to the next: reuse the plan.
        if self._last_plan is not None and np.array_equal(top_keys, self._last_top_keys):
            return self._last_plan
        table = self._base_table.copy()
        table[top_keys] = np.arange(len(self._base_names), len(self._base_names) + len(top_keys), dtype=np.int32)
        names = self._base_names + tuple(map(key_token, top_keys.tolist()))
        self._last_top_keys = top_keys
        self._last_plan = ServicePlan(names, _read_only(table))
        return self._last_plan

    def save(self, directory: Path) -> None:
        state = {"mode": self.mode, "last_end_ns": self._last_end_ns}
        (directory / "services.json").write_text(json.dumps(state), encoding="utf-8")
        np.save(directory / "services_counts.npy", self._counts, allow_pickle=False)

    def load(self, directory: Path) -> None:
        state = _check_saved_mode(directory, self.mode)
        path = directory / "services_counts.npy"
        try:
            counts = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise StateError(f"unreadable service counts {path}: {error}") from error
        if counts.shape != (KEY_COUNT,) or counts.dtype != np.float64:
            raise StateError(f"invalid service counts {path}: shape {counts.shape} {counts.dtype}, expected ({KEY_COUNT},) float64")
        last_end_ns = state.get("last_end_ns")
        if last_end_ns is not None and not isinstance(last_end_ns, int):
            raise StateError(f"invalid last_end_ns {last_end_ns!r} in {directory / 'services.json'}")
        self._counts = counts
        self._last_end_ns = last_end_ns


def make_services(
    mode: str,
    *,
    top_n: int = DEFAULT_TOP_N,
    half_life_s: float = DEFAULT_HALF_LIFE_S,
    domain_map: Mapping[str, Sequence[str]] = DEFAULT_DOMAIN_SERVICES,
) -> ServiceMap:
    """Build the service map of one mode: ``single``, ``auto``, ``domain`` or ``hybrid``."""
    if mode == "single":
        return SingleServices()
    if mode == "auto":
        return AutoServices(top_n=top_n, half_life_s=half_life_s)
    if mode == "domain":
        return DomainServices(domain_map)
    if mode == "hybrid":
        return AutoServices(top_n=top_n, half_life_s=half_life_s, domain_map=domain_map)
    raise ConfigError(f"invalid services mode {mode!r}: expected one of {', '.join(SERVICE_MODES)}")


def service_keys(protos: np.ndarray, dst_ports: np.ndarray) -> np.ndarray:
    """Return ``service_key`` for arrays of protocols and ports, with -1 for a missing value."""
    keys = np.where((protos >= 0) & (protos <= 255), PROTO_KEY_BASE + protos, UNKNOWN_PROTO_KEY)
    has_port = (dst_ports >= 0) & (dst_ports < PORT_COUNT)
    tcp = has_port & (protos == PROTO_TCP)
    udp = has_port & (protos == PROTO_UDP)
    keys[tcp] = TCP_KEY_BASE + dst_ports[tcp]
    keys[udp] = UDP_KEY_BASE + dst_ports[udp]
    return keys
