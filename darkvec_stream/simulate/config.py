"""Parameters of a simulated telescope run: the run itself and every population.

This module only describes and validates parameters and converts them to and
from JSON-ready dictionaries; it generates no traffic. Population sizes and
rates are given for scale 1 and a /24 telescope, and ``resolve`` turns the
relative settings (``None`` event days) into absolute ones.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Literal

from darkvec_stream.errors import ConfigError

CampaignKind = Literal["scanner", "bruteforce"]
ContinuousKind = Literal["botnet", "worm"]
BurstKind = Literal["noise", "oneoff", "backscatter"]

DEFAULT_START = "2021-03-01T00:00:00Z"
DEFAULT_PREFIX = "198.51.100.0/24"
SCANNER_SPACE = "198.18.0.0/15"
SPREAD_SPACE = "100.64.0.0/10"


@dataclass(frozen=True)
class CampaignSubgroup:
    """Senders of one organisation that sweep the telescope together on one port set.

    Each campaign lasts ``duration_min``; campaigns start every ``period_h``
    hours from ``phase_h`` (periodic schedule) or at random with that mean
    gap. After ``change_day`` (days from the start) the port set becomes
    ``ports_after``.
    """

    name: str
    senders: int
    ports: tuple[str, ...]
    period_h: float
    phase_h: float
    duration_min: float
    packets_per_campaign: float
    participation: float = 0.95
    ports_after: tuple[str, ...] = ()
    change_day: float | None = None


@dataclass(frozen=True)
class CampaignGroup:
    """A scanner organisation or brute-force group made of campaign sub-groups.

    ``subnets`` > 0 places the senders in that many /24 subnets of the
    scanner address space (an organisation that owns its ranges); 0 spreads
    them over the sender space like compromised hosts.
    """

    name: str
    kind: CampaignKind
    subgroups: tuple[CampaignSubgroup, ...]
    label: str | None = None
    subnets: int = 0
    schedule: Literal["periodic", "random"] = "periodic"
    lanes: int = 1
    tcp_length: int = 44


@dataclass(frozen=True)
class ContinuousGroup:
    """A botnet or worm whose senders probe all the time while they are alive.

    ``senders`` are alive at ``onset_day``. With ``max_senders`` = 0 the
    alive count grows by ``growth_per_day`` (a fraction) and each sender
    lives ``lifetime_days`` on average (0: until the end). With
    ``max_senders`` > 0 infections follow a logistic curve from ``senders``
    to ``max_senders`` at rate ``ln(1 + growth_per_day)`` per day.
    """

    name: str
    kind: ContinuousKind
    senders: int
    ports: tuple[str, ...]
    packets_per_hour: float
    port_weights: tuple[float, ...] = ()
    rate_sigma: float = 0.8
    growth_per_day: float = 0.0
    lifetime_days: float = 0.0
    onset_day: float | None = 0.0
    max_senders: int = 0
    mirai_fingerprint: bool = False
    tcp_length: int = 40
    lanes: int = 1


@dataclass(frozen=True)
class BurstPopulation:
    """Uncoordinated senders: each one acts alone, in random bursts.

    ``senders_per_day`` are active on a given day, each for
    ``lifetime_days`` consecutive days on average (1 means a fresh set
    every day). Each active sender-day has a Poisson number of bursts with
    a log-normal packet count and duration. Each sender probes
    ``ports_per_sender`` ports drawn from ``ports`` (0: all of them), plus
    a ``random_port_share`` chance per port of a uniform random TCP port.
    For backscatter, ``ports`` are the victims' service (source) ports.
    """

    name: str
    kind: BurstKind
    senders_per_day: int
    ports: tuple[str, ...]
    packets_median: float
    port_weights: tuple[float, ...] = ()
    packets_sigma: float = 1.0
    burst_min_median: float = 10.0
    bursts_per_day: float = 1.0
    lifetime_days: float = 1.0
    ports_per_sender: int = 0
    random_port_share: float = 0.0
    lanes: int = 1
    tcp_length: int = 60


Population = CampaignGroup | ContinuousGroup | BurstPopulation


@dataclass(frozen=True)
class SimulationConfig:
    """Every parameter of one simulated run; the seed fixes every byte of the output.

    ``scale`` multiplies sender counts (not per-sender rates), but a
    coordinated group (campaign sub-group, botnet, worm) keeps at least
    ``min_group_senders`` so that it is still a group at small scales. Per-sender
    packet counts grow with the telescope size relative to a /24, except
    for one-off senders whose count grows instead.
    """

    days: float = 1.0
    start: str = DEFAULT_START
    prefix: str = DEFAULT_PREFIX
    scale: float = 1.0
    seed: int = 0
    out_of_order_share: float = 0.002
    max_displacement_s: float = 120.0
    duplicate_share: float = 0.001
    label_share: float = 0.7
    min_group_senders: int = 6
    time_resolution_ns: int = 1000
    chunk_s: int = 3600
    scanner_space: str = SCANNER_SPACE
    sender_space: str = SPREAD_SPACE
    populations: tuple[Population, ...] = field(default_factory=lambda: default_populations())

    @property
    def start_ns(self) -> int:
        return parse_start_ns(self.start)

    @property
    def end_ns(self) -> int:
        return self.start_ns + round(self.days * 86_400) * 1_000_000_000

    @property
    def telescope(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.prefix, strict=True)

    @property
    def size_factor(self) -> float:
        """Telescope addresses relative to a /24."""
        return self.telescope.num_addresses / 256

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["populations"] = [
            {"type": type(population).__name__, **asdict(population)}
            for population in self.populations
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown simulation settings {unknown}; allowed: {sorted(known)}")
        values = dict(data)
        if "populations" in values:
            values["populations"] = tuple(population_from_dict(item) for item in values["populations"])
        return cls(**values)


def parse_start_ns(start: str) -> int:
    """Parse an ISO 8601 start time (UTC when no offset is given) to epoch ns."""
    try:
        moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError as error:
        raise ConfigError(f"invalid start time {start!r}: use ISO 8601, e.g. 2021-03-01T00:00:00Z") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment.microsecond:
        raise ConfigError(f"start time {start!r} must fall on a whole second")
    return int(moment.timestamp()) * 1_000_000_000


_POPULATION_TYPES: dict[str, type] = {
    "CampaignGroup": CampaignGroup,
    "ContinuousGroup": ContinuousGroup,
    "BurstPopulation": BurstPopulation,
}


def population_from_dict(data: dict[str, Any]) -> Population:
    """Build one population spec from its ``to_dict`` form (``type`` names the class)."""
    values = dict(data)
    type_name = values.pop("type", None)
    spec_type = _POPULATION_TYPES.get(str(type_name))
    if spec_type is None:
        raise ConfigError(
            f"invalid population type {type_name!r}; allowed: {sorted(_POPULATION_TYPES)}"
        )
    for key, value in list(values.items()):
        if isinstance(value, list) and key != "subgroups":
            values[key] = tuple(value)
    if spec_type is CampaignGroup:
        values["subgroups"] = tuple(
            CampaignSubgroup(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})
            for item in values.get("subgroups", ())
        )
    try:
        return spec_type(**values)  # type: ignore[no-any-return]
    except TypeError as error:
        raise ConfigError(f"invalid {type_name} settings {sorted(values)}: {error}") from error


def _sub(name: str, senders: int, ports: str, period_h: float, phase_h: float,
         duration_min: float, packets: float, **extra: Any) -> CampaignSubgroup:
    port_list = tuple(f"{port}/tcp" if port.isdigit() else port for port in ports.split())
    return CampaignSubgroup(name, senders, port_list, period_h, phase_h, duration_min, packets, **extra)


def _ports(text: str) -> tuple[str, ...]:
    return tuple(f"{port}/tcp" if port.isdigit() else port for port in text.split())


def default_populations() -> tuple[Population, ...]:
    """Return the populations calibrated to one day of a /24 in March 2021.

    Sender counts of the named scanner organisations and of the Mirai-like
    botnet follow the per-day figures of the DarkVec paper (Gioacchini et al.,
    CoNEXT 2021); docs/simulator.md compares them with what this generator
    produces.
    """
    scanners: tuple[Population, ...] = (
        CampaignGroup("censys", "scanner", (
            _sub("censys-web", 140, "80 443 8080 8443 8000 8888", 6, 0.5, 40, 12),
            _sub("censys-iot", 100, "23 2323 7547 5555 8291 37215", 8, 2.25, 40, 14),
            _sub("censys-db", 96, "3306 5432 1433 6379 27017 9200", 12, 4.75, 50, 20),
        ), label="censys", subnets=4),
        CampaignGroup("stretchoid", "scanner", (
            _sub("stretchoid", 104, "22 80 443 3389 5900 8080 2000 5060", 12, 1.5, 60, 18),
        ), label="stretchoid", subnets=2),
        CampaignGroup("internetcensus", "scanner", (
            _sub("internetcensus", 103, "21 22 25 110 143 993 995 53/udp", 12, 7.25, 45, 18),
        ), label="internetcensus", subnets=2),
        CampaignGroup("binaryedge", "scanner", (
            _sub("binaryedge", 101, "80 443 9200 27017 11211 6379 2375", 8, 5.5, 40, 14),
        ), label="binaryedge", subnets=2),
        CampaignGroup("sharashka", "scanner", (
            _sub("sharashka", 50, "80 443 8080 8443 81 8081", 12, 9.5, 50, 18),
        ), label="sharashka", subnets=1),
        CampaignGroup("ipip", "scanner", (
            _sub("ipip", 49, "80 443 21 22 23 3389 161/udp", 24, 14.5, 90, 30, participation=1.0),
        ), label="ipip", subnets=1),
        CampaignGroup("shodan", "scanner", (
            _sub("shodan", 23, "21 22 23 80 102 443 502 1911 2404 4911 8883 9600 20000 47808/udp", 6, 3.5, 90, 20),
        ), label="shodan", subnets=1),
        CampaignGroup("engin-umich", "scanner", (
            _sub("engin-umich", 10, "443 80", 24, 19.25, 120, 40, participation=1.0),
        ), label="engin-umich", subnets=1),
        CampaignGroup("onyphe", "scanner", (
            _sub("onyphe", 40, "80 443 8080 8443", 8, 6.5, 45, 16,
                 ports_after=_ports("3389 5900 5901 5985"), change_day=None),
        ), label="onyphe", subnets=1),
    )
    bruteforce: tuple[Population, ...] = (
        CampaignGroup("ssh-bruteforce", "bruteforce", (
            _sub("ssh-bruteforce", 1500, "22 2222", 4, 0, 50, 22),
        ), schedule="random", lanes=1, tcp_length=60),
        CampaignGroup("rdp-bruteforce", "bruteforce", (
            _sub("rdp-bruteforce", 1000, "3389", 6, 0, 60, 24),
        ), schedule="random", lanes=1, tcp_length=60),
        CampaignGroup("telnet-bruteforce", "bruteforce", (
            _sub("telnet-bruteforce", 1000, "23 2323", 6, 0, 40, 18),
        ), schedule="random", lanes=1, tcp_length=60),
    )
    botnets: tuple[Population, ...] = (
        ContinuousGroup("mirai", "botnet", 6550, _ports("23 2323 5555 37215 52869 8080 80 81"),
                        packets_per_hour=4.0, port_weights=(80, 10, 3, 2, 1, 2, 1, 1),
                        growth_per_day=0.02, lifetime_days=7.0, mirai_fingerprint=True, lanes=3),
        ContinuousGroup("smb-botnet", "botnet", 2800, _ports("445 139"), packets_per_hour=1.6,
                        port_weights=(9, 1), lifetime_days=10.0, tcp_length=48, lanes=1),
        ContinuousGroup("smtp-botnet", "botnet", 400, _ports("25 587 465"), packets_per_hour=1.6,
                        port_weights=(6, 3, 1), lifetime_days=10.0, tcp_length=60, lanes=1),
        ContinuousGroup("docker-worm", "worm", 30, _ports("2375 2376 4243"), packets_per_hour=6.0,
                        port_weights=(6, 3, 1), growth_per_day=20.0, onset_day=None,
                        max_senders=300, tcp_length=60, lanes=1),
    )
    background: tuple[Population, ...] = (
        BurstPopulation("backscatter", "backscatter", 400,
                        _ports("80 443 53/udp 22 25 27015/udp 3074/udp 8080"), packets_median=480,
                        port_weights=(35, 30, 10, 5, 5, 5, 5, 5), packets_sigma=1.2,
                        burst_min_median=30, ports_per_sender=1, tcp_length=44),
        BurstPopulation("unaffiliated-scanners", "noise", 5800,
                        _ports("80 443 22 23 8080 3389 445 1433 3306 5900 6379 21 25 110 8443 "
                               "9200 5060/udp 123/udp 1900/udp 161/udp"),
                        packets_median=40, packets_sigma=1.4, bursts_per_day=2.0,
                        burst_min_median=15, lifetime_days=3.0, ports_per_sender=3,
                        random_port_share=0.3, lanes=4),
        BurstPopulation("udp-noise", "noise", 2000,
                        _ports("53/udp 123/udp 161/udp 1900/udp 5060/udp 11211/udp 19/udp 137/udp 500/udp"),
                        packets_median=14, packets_sigma=0.9, bursts_per_day=1.5,
                        lifetime_days=2.0, ports_per_sender=2, lanes=2),
        BurstPopulation("icmp-noise", "noise", 800, ("icmp",), packets_median=12,
                        packets_sigma=0.9, bursts_per_day=1.5, lifetime_days=2.0, lanes=1),
        BurstPopulation("oneoff", "oneoff", 24000,
                        _ports("80 443 22 23 8080 3389 445 81 8443 53/udp 123/udp icmp"),
                        packets_median=2.0, packets_sigma=0.5, burst_min_median=2,
                        ports_per_sender=1, random_port_share=0.4, lanes=40),
    )
    return scanners + bruteforce + botnets + background


def resolve(config: SimulationConfig) -> SimulationConfig:
    """Validate ``config`` and fill relative settings (``None`` event days).

    A worm with no onset starts at 60 % of the run and a port change with no
    day happens at 40 % of the run, both rounded down to a whole hour, so a
    run of any length contains both events.
    """
    validate(config)
    hours = config.days * 24
    onset_day = math.floor(hours * 0.6) / 24
    change_day = math.floor(hours * 0.4) / 24
    populations = []
    for population in config.populations:
        if isinstance(population, ContinuousGroup) and population.onset_day is None:
            population = replace(population, onset_day=onset_day)
        if isinstance(population, CampaignGroup):
            subgroups = tuple(
                replace(sub, change_day=change_day)
                if sub.ports_after and sub.change_day is None else sub
                for sub in population.subgroups
            )
            population = replace(population, subgroups=subgroups)
        populations.append(population)
    return replace(config, populations=tuple(populations))


def validate(config: SimulationConfig) -> None:
    """Raise ``ConfigError`` naming the first invalid setting of ``config``."""
    _check_range("days", config.days, 1 / 24, 3650)
    _check_range("scale", config.scale, 1e-4, 100)
    _check_range("out_of_order_share", config.out_of_order_share, 0, 0.5)
    _check_range("duplicate_share", config.duplicate_share, 0, 0.5)
    _check_range("label_share", config.label_share, 0, 1)
    _check_range("min_group_senders", config.min_group_senders, 1, 1000)
    _check_range("max_displacement_s", config.max_displacement_s, 0, config.chunk_s / 2)
    if config.seed < 0 or config.seed >= 2**63:
        raise ConfigError(f"invalid seed {config.seed}: use an integer in [0, 2**63)")
    if config.chunk_s <= 0 or 86_400 % config.chunk_s:
        raise ConfigError(f"invalid chunk_s {config.chunk_s}: it must divide a day (86400 s)")
    if config.time_resolution_ns <= 0 or 1_000_000_000 % config.time_resolution_ns:
        raise ConfigError(
            f"invalid time_resolution_ns {config.time_resolution_ns}: it must divide one second"
        )
    config.start_ns  # noqa: B018  (validates the start time)
    _check_prefix(config)
    names = [population.name for population in config.populations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"population names must be unique; repeated: {duplicates}")
    for population in config.populations:
        _check_population(population)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"invalid {name} {value}: use a value in [{low}, {high}]")


def _check_prefix(config: SimulationConfig) -> None:
    try:
        telescope = ipaddress.IPv4Network(config.prefix, strict=True)
    except ValueError as error:
        raise ConfigError(
            f"invalid telescope prefix {config.prefix!r}: use an IPv4 network such as 198.51.100.0/24"
        ) from error
    if not 16 <= telescope.prefixlen <= 28:
        raise ConfigError(f"invalid telescope prefix {config.prefix!r}: use a /16 to /28 network")
    for setting in ("scanner_space", "sender_space"):
        space = ipaddress.IPv4Network(getattr(config, setting), strict=True)
        if space.overlaps(telescope):
            raise ConfigError(
                f"telescope prefix {config.prefix} overlaps {setting} {space}: "
                "senders must lie outside the telescope, so choose another prefix"
            )


def _check_population(population: Population) -> None:
    from darkvec_stream.simulate.ports import parse_port

    ports: list[str] = []
    if isinstance(population, CampaignGroup):
        if not population.subgroups:
            raise ConfigError(f"population {population.name!r} has no subgroups")
        for sub in population.subgroups:
            ports += list(sub.ports) + list(sub.ports_after)
            if sub.duration_min <= 0 or sub.duration_min >= 720:
                raise ConfigError(
                    f"invalid duration_min {sub.duration_min} in {sub.name!r}: use (0, 720) minutes"
                )
            if sub.period_h <= 0:
                raise ConfigError(f"invalid period_h {sub.period_h} in {sub.name!r}: use > 0")
    else:
        ports = list(population.ports)
        if population.port_weights and len(population.port_weights) != len(population.ports):
            raise ConfigError(
                f"population {population.name!r} has {len(population.port_weights)} port_weights "
                f"for {len(population.ports)} ports; give one weight per port or none"
            )
    if isinstance(population, BurstPopulation) and population.burst_min_median >= 720:
        raise ConfigError(f"invalid burst_min_median in {population.name!r}: use < 720 minutes")
    for port in ports:
        parse_port(port)
