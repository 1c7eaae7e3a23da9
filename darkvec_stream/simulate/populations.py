"""Sender rosters and activity bursts of each simulated population.

A population model turns its spec into a roster (addresses, sub-groups,
TTLs) and into bursts: intervals in which one sender sends a Poisson number
of packets with a known mean. The engine cuts bursts into chunks and draws
packets; this module never draws individual packets except their ports.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from darkvec_stream.simulate.addresses import SpreadSpace, SubnetSpace
from darkvec_stream.simulate.config import (
    BurstPopulation,
    CampaignGroup,
    ContinuousGroup,
    Population,
    SimulationConfig,
)
from darkvec_stream.simulate.ports import PortTable, parse_port

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S

Style = Literal["scan", "backscatter"]


@dataclass(frozen=True, slots=True)
class Bursts:
    """Activity intervals: sender ``sender[i]`` sends Poisson(``packets[i]``) packets
    spread uniformly over ``[start_ns[i], end_ns[i])`` on port profile ``profile[i]``."""

    sender: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    packets: np.ndarray
    profile: np.ndarray

    @staticmethod
    def empty() -> Bursts:
        ints = np.zeros(0, dtype=np.int64)
        return Bursts(ints, ints, ints, np.zeros(0), ints)

    @staticmethod
    def concat(parts: list[Bursts]) -> Bursts:
        if not parts:
            return Bursts.empty()
        return Bursts(*(np.concatenate([getattr(part, name) for part in parts])
                        for name in ("sender", "start_ns", "end_ns", "packets", "profile")))

    def overlapping(self, start_ns: int, end_ns: int) -> Bursts:
        keep = (self.start_ns < end_ns) & (self.end_ns > start_ns)
        return Bursts(self.sender[keep], self.start_ns[keep], self.end_ns[keep],
                      self.packets[keep], self.profile[keep])


def stream(seed: int, name: str, *key: int) -> np.random.Generator:
    """Return the random stream of population ``name`` for ``key``.

    Keyed by a hash of the name, not by position, so adding, removing or
    resizing one population leaves every other population's draws unchanged.
    """
    spawn_key = (zlib.crc32(name.encode()), *key)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key)))


def scaled_count(count: float, scale: float, minimum: int = 1) -> int:
    """Scale a sender count, keeping at least ``minimum`` senders of a configured population."""
    if count <= 0:
        return 0
    return max(min(minimum, round(count)), 1, round(count * scale))


def _draw_ttl(rng: np.random.Generator, senders: int, initial: tuple[int, ...], weights: tuple[float, ...]) -> np.ndarray:
    base = rng.choice(np.asarray(initial), size=senders, p=np.asarray(weights) / sum(weights))
    hops = rng.integers(5, 26, size=senders)
    return (base - hops).astype(np.uint8)


class PopulationModel:
    """Common state of every population: roster arrays and packet style."""

    kind: str
    style: Style = "scan"
    mirai_fingerprint = False
    tcp_length = 44

    def __init__(self, spec: Population, config: SimulationConfig) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self.config = config
        self.ports = PortTable()
        self.addresses = np.zeros(0, dtype=np.uint32)
        self.subgroup_of = np.zeros(0, dtype=np.int32)
        self.subgroup_names: list[str] = [spec.name]
        self.ttl = np.zeros(0, dtype=np.uint8)
        self.sender_ports: np.ndarray | None = None
        self.sender_protocols: np.ndarray | None = None
        self._day_cache: dict[int, Bursts] = {}

    @property
    def senders(self) -> int:
        return int(self.addresses.size)

    def rng(self, *key: int) -> np.random.Generator:
        return stream(self.config.seed, self.name, *key)

    def bursts_overlapping(self, start_ns: int, end_ns: int) -> Bursts:
        """Select the bursts that overlap ``[start_ns, end_ns)``, which end within a day of their start."""
        day = (start_ns - self.config.start_ns) // NS_PER_DAY
        parts = [self._day_bursts(index) for index in (day - 1, day) if index >= 0]
        long_bursts = self.long_bursts()
        if long_bursts is not None:
            parts.append(long_bursts)
        return Bursts.concat(parts).overlapping(start_ns, end_ns)

    def _day_bursts(self, day: int) -> Bursts:
        if day not in self._day_cache:
            for old in [key for key in self._day_cache if key < day - 1]:
                del self._day_cache[old]
            self._day_cache[day] = self.bursts_for_day(day)
        return self._day_cache[day]

    def bursts_for_day(self, day: int) -> Bursts:
        return Bursts.empty()

    def long_bursts(self) -> Bursts | None:
        return None

    def draw_ports(self, sender: np.ndarray, profile: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``(port, protocol)`` per packet: per-sender port lists win over profiles."""
        if self.sender_ports is None or self.sender_protocols is None:
            return self.ports.draw(profile, rng)
        column = rng.integers(0, self.sender_ports.shape[1], size=sender.size)
        return self.sender_ports[sender, column], self.sender_protocols[sender, column]


class CampaignModel(PopulationModel):
    """Organisations whose senders sweep together in scheduled or random campaigns."""

    def __init__(self, spec: CampaignGroup, config: SimulationConfig, subnets: SubnetSpace, spread: SpreadSpace) -> None:
        super().__init__(spec, config)
        self.group = spec
        self.tcp_length = spec.tcp_length
        rng = self.rng(0)
        counts = [scaled_count(sub.senders, config.scale, config.min_group_senders) for sub in spec.subgroups]
        self.subgroup_names = [sub.name for sub in spec.subgroups]
        self.subgroup_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        total = int(sum(counts))
        if spec.subnets > 0:
            self.addresses = subnets.addresses(spec.name, spec.subnets, total, rng)
        else:
            lanes = spread.reserve(spec.name, spec.lanes)
            self.addresses = spread.addresses(spec.name, lanes, np.arange(total))
        ttl_initial = (64,) if spec.kind == "scanner" else (64, 128, 255)
        ttl_weights = (1.0,) if spec.kind == "scanner" else (0.6, 0.3, 0.1)
        self.ttl = _draw_ttl(rng, total, ttl_initial, ttl_weights)
        self._members = [np.flatnonzero(self.subgroup_of == index) for index in range(len(counts))]
        self._profiles = []
        for sub in spec.subgroups:
            before = self.ports.add(sub.ports)
            after = self.ports.add(sub.ports_after) if sub.ports_after else before
            self._profiles.append((before, after))
        self.ports.freeze()

    def change_ns(self, subgroup: int) -> int | None:
        day = self.group.subgroups[subgroup].change_day
        if day is None or not self.group.subgroups[subgroup].ports_after:
            return None
        return self.config.start_ns + round(day * 86_400) * NS_PER_S

    def campaign_starts(self, subgroup: int, day: int, rng: np.random.Generator) -> np.ndarray:
        """Start times of the campaigns of ``subgroup`` that begin on ``day``."""
        sub = self.group.subgroups[subgroup]
        day_start = self.config.start_ns + day * NS_PER_DAY
        day_end = min(day_start + NS_PER_DAY, self.config.end_ns)
        period_ns = round(sub.period_h * NS_PER_H)
        if self.group.schedule == "periodic":
            phase_ns = round(sub.phase_h * NS_PER_H) % period_ns
            first = day_start - day_start % period_ns + phase_ns
            starts = np.arange(first - period_ns, day_end, period_ns, dtype=np.int64)
            # Schedulers start a few minutes late, never early.
            starts = starts + rng.integers(0, 300, size=starts.size) * NS_PER_S
        else:
            count = rng.poisson((day_end - day_start) / period_ns)
            starts = np.sort(rng.integers(day_start, day_end, size=count))
        return starts[(starts >= day_start) & (starts < day_end)]

    def bursts_for_day(self, day: int) -> Bursts:
        rng = self.rng(2, day)
        parts = []
        for subgroup, sub in enumerate(self.group.subgroups):
            members = self._members[subgroup]
            duration_ns = round(sub.duration_min * 60 * NS_PER_S)
            change_ns = self.change_ns(subgroup)
            for campaign_start in self.campaign_starts(subgroup, day, rng):
                joined = members[rng.random(members.size) < sub.participation]
                # Each sender joins a little after the start and leaves a little before the end.
                late = (rng.random(joined.size) * 0.15 * duration_ns).astype(np.int64)
                early = (rng.random(joined.size) * 0.15 * duration_ns).astype(np.int64)
                packets = sub.packets_per_campaign * self.config.size_factor * rng.lognormal(0.0, 0.35, joined.size)
                before, after = self._profiles[subgroup]
                profile = after if change_ns is not None and campaign_start >= change_ns else before
                parts.append(Bursts(
                    joined.astype(np.int64),
                    campaign_start + late,
                    campaign_start + duration_ns - early,
                    packets,
                    np.full(joined.size, profile, dtype=np.int64),
                ))
        return Bursts.concat(parts)


class ContinuousModel(PopulationModel):
    """Botnets and worms: each sender probes at its own rate from infection to cleanup."""

    def __init__(self, spec: ContinuousGroup, config: SimulationConfig, spread: SpreadSpace) -> None:
        super().__init__(spec, config)
        self.group = spec
        self.mirai_fingerprint = spec.mirai_fingerprint
        self.tcp_length = spec.tcp_length
        rng = self.rng(0)
        birth_ns, death_ns = self._roster(rng)
        total = birth_ns.size
        lanes = spread.reserve(spec.name, spec.lanes)
        self.addresses = spread.addresses(spec.name, lanes, np.arange(total))
        self.subgroup_of = np.zeros(total, dtype=np.int32)
        self.ttl = _draw_ttl(rng, total, (64,), (1.0,))
        rate_per_h = spec.packets_per_hour * config.size_factor * rng.lognormal(0.0, spec.rate_sigma, total)
        self.birth_ns = birth_ns
        self.death_ns = death_ns
        self.ports.add(spec.ports, spec.port_weights)
        self.ports.freeze()
        self._long = Bursts(
            np.arange(total, dtype=np.int64), birth_ns, death_ns,
            rate_per_h * (death_ns - birth_ns) / NS_PER_H, np.zeros(total, dtype=np.int64),
        )

    @property
    def onset_ns(self) -> int:
        onset_day = self.group.onset_day or 0.0
        return self.config.start_ns + round(onset_day * 86_400) * NS_PER_S

    def long_bursts(self) -> Bursts | None:
        return self._long

    def _roster(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Infection (birth) and cleanup (death) times of every sender of the run."""
        spec = self.group
        onset_ns, end_ns = self.onset_ns, self.config.end_ns
        minimum = self.config.min_group_senders
        initial = scaled_count(spec.senders, self.config.scale, minimum)
        if spec.max_senders > 0:
            # Raising a small initial count to the minimum keeps the growth ratio.
            ratio = spec.max_senders / max(spec.senders, 1)
            maximum = max(scaled_count(spec.max_senders, self.config.scale), round(initial * ratio))
            birth = self._logistic_births(initial, maximum)
        else:
            birth = np.concatenate([np.full(initial, onset_ns, dtype=np.int64), self._growth_births(initial, rng)])
        birth = birth[birth < end_ns]
        if spec.lifetime_days > 0:
            life_ns = (rng.exponential(spec.lifetime_days, birth.size) * NS_PER_DAY).astype(np.int64)
            death = np.minimum(birth + np.maximum(life_ns, NS_PER_S), end_ns)
        else:
            death = np.full(birth.size, end_ns, dtype=np.int64)
        return birth, death

    def _growth_births(self, initial: int, rng: np.random.Generator) -> np.ndarray:
        """New senders that keep the alive count on ``initial * (1 + growth) ** days``."""
        spec = self.group
        days = math.ceil((self.config.end_ns - self.onset_ns) / NS_PER_DAY)
        births = []
        for day in range(days):
            alive_start = initial * (1 + spec.growth_per_day) ** day
            alive_end = initial * (1 + spec.growth_per_day) ** (day + 1)
            replaced = (alive_start + alive_end) / 2 / spec.lifetime_days if spec.lifetime_days > 0 else 0.0
            count = rng.poisson(max(alive_end - alive_start, 0.0) + replaced)
            day_start = self.onset_ns + day * NS_PER_DAY
            births.append(np.sort(rng.integers(day_start, day_start + NS_PER_DAY, size=count)))
        return np.concatenate(births) if births else np.zeros(0, dtype=np.int64)

    def _logistic_births(self, initial: int, maximum: int) -> np.ndarray:
        """Infection times on a logistic curve from ``initial`` to ``maximum`` senders."""
        rate_per_ns = math.log(1 + self.group.growth_per_day) / NS_PER_DAY
        maximum = max(maximum, initial)
        rank = np.arange(initial, maximum, dtype=np.float64) + 0.5
        ratio = (maximum / initial - 1) / (maximum / rank - 1)
        delay_ns = np.log(ratio) / rate_per_ns
        later = self.onset_ns + delay_ns.astype(np.int64)
        return np.concatenate([np.full(initial, self.onset_ns, dtype=np.int64), later])


class BurstModel(PopulationModel):
    """Uncoordinated senders (noise, one-offs, backscatter victims) in random bursts."""

    def __init__(self, spec: BurstPopulation, config: SimulationConfig, spread: SpreadSpace) -> None:
        super().__init__(spec, config)
        self.burst_spec = spec
        self.style = "backscatter" if spec.kind == "backscatter" else "scan"
        self.tcp_length = spec.tcp_length
        rng = self.rng(0)
        per_day = scaled_count(spec.senders_per_day, config.scale)
        if spec.kind == "oneoff":
            # A larger telescope catches more of the senders that send a handful of packets.
            per_day = max(1, round(per_day * config.size_factor))
        self.birth_day, self.death_day = self._roster(per_day, rng)
        total = self.birth_day.size
        lanes = spread.reserve(spec.name, spec.lanes)
        self.addresses = spread.addresses(spec.name, lanes, np.arange(total))
        self.subgroup_of = np.zeros(total, dtype=np.int32)
        self.ttl = _draw_ttl(rng, total, (64, 128, 255), (0.6, 0.3, 0.1))
        self.ports.add(spec.ports, spec.port_weights)
        self.ports.freeze()
        if spec.ports_per_sender > 0:
            self._assign_sender_ports(rng, total)

    def _roster(self, per_day: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """First and last-plus-one active day of each sender, with a steady active count."""
        lifetime = max(self.burst_spec.lifetime_days, 1.0)
        days = math.ceil(self.config.days)
        births = [np.zeros(per_day, dtype=np.int64)]
        births += [np.full(rng.poisson(per_day / lifetime), day, dtype=np.int64) for day in range(1, days)]
        birth_day = np.concatenate(births)
        life_days = 1 + rng.poisson(lifetime - 1, birth_day.size)
        return birth_day, birth_day + life_days

    def _assign_sender_ports(self, rng: np.random.Generator, total: int) -> None:
        spec = self.burst_spec
        parsed = np.asarray([parse_port(port) for port in spec.ports], dtype=np.int64)
        weights = np.asarray(spec.port_weights or [1.0] * len(spec.ports), dtype=np.float64)
        choice = rng.choice(len(parsed), size=(total, spec.ports_per_sender), p=weights / weights.sum())
        ports = parsed[choice, 0].astype(np.int32)
        protocols = parsed[choice, 1].astype(np.uint8)
        random_port = rng.random(choice.shape) < spec.random_port_share
        ports[random_port] = rng.integers(1, 65536, size=int(random_port.sum()))
        protocols[random_port] = 6
        self.sender_ports, self.sender_protocols = ports, protocols

    def bursts_for_day(self, day: int) -> Bursts:
        spec = self.burst_spec
        rng = self.rng(2, day)
        active = np.flatnonzero((self.birth_day <= day) & (self.death_day > day))
        if spec.kind in ("oneoff", "backscatter"):
            # A one-off sender or an attacked victim shows up in exactly one burst a day.
            counts = np.ones(active.size, dtype=np.int64)
        else:
            counts = rng.poisson(spec.bursts_per_day, active.size)
        sender = np.repeat(active, counts).astype(np.int64)
        day_start = self.config.start_ns + day * NS_PER_DAY
        start = rng.integers(day_start, day_start + NS_PER_DAY, size=sender.size)
        minutes = np.minimum(rng.lognormal(math.log(spec.burst_min_median), 0.7, sender.size), 719.0)
        end = start + np.maximum((minutes * 60 * NS_PER_S).astype(np.int64), NS_PER_S)
        packets = spec.packets_median * rng.lognormal(0.0, spec.packets_sigma, sender.size)
        if spec.kind == "oneoff":
            # A handful of packets: the mean is capped so one-offs stay under ten packets.
            packets = np.minimum(packets, 6.0)
        else:
            packets *= self.config.size_factor
        return Bursts(sender, start, end, packets, np.zeros(sender.size, dtype=np.int64))


def build_models(config: SimulationConfig) -> list[PopulationModel]:
    """Build one model per population, in configuration order."""
    subnets = SubnetSpace(config.scanner_space)
    spread = SpreadSpace(config.sender_space)
    models: list[PopulationModel] = []
    for spec in config.populations:
        if isinstance(spec, CampaignGroup):
            models.append(CampaignModel(spec, config, subnets, spread))
        elif isinstance(spec, ContinuousGroup):
            models.append(ContinuousModel(spec, config, spread))
        else:
            models.append(BurstModel(spec, config, spread))
    return models
