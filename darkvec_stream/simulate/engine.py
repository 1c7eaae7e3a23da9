"""Turn population bursts into packets, chunk by chunk, in emission order.

The engine draws the packets of every population for one chunk of event
time, gives them header fields, displaces a small share (out-of-order
records) and repeats another share (duplicates), and keeps the per-sender
truth (packets, first and last seen). Writing files is left to ``writers``.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, fields
from typing import Callable, Iterator

import numpy as np

from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, Record
from darkvec_stream.simulate.config import SimulationConfig, resolve
from darkvec_stream.simulate.populations import NS_PER_S, PopulationModel, build_models

logger = logging.getLogger(__name__)

NULL = -1
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


@dataclass(slots=True)
class PacketBatch:
    """Packets as parallel columns; ``NULL`` (-1) marks an absent field.

    ``population`` and ``sender`` locate the sending roster entry; they are
    truth, not record fields.
    """

    ts_ns: np.ndarray
    population: np.ndarray
    sender: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    src_port: np.ndarray
    dst_port: np.ndarray
    proto: np.ndarray
    length: np.ndarray
    tcp_flags: np.ndarray
    ttl: np.ndarray
    tcp_seq: np.ndarray
    icmp_type: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def take(self, index: np.ndarray) -> PacketBatch:
        return PacketBatch(*(getattr(self, item.name)[index] for item in fields(self)))

    @staticmethod
    def concat(batches: list[PacketBatch]) -> PacketBatch:
        return PacketBatch(*(np.concatenate([getattr(batch, item.name) for batch in batches])
                             for item in fields(PacketBatch)))

    @property
    def mirai(self) -> np.ndarray:
        """The Mirai fingerprint per packet: a TCP sequence number equal to the destination."""
        return (self.proto == PROTO_TCP) & (self.tcp_seq == self.dst.astype(np.int64))

    def records(self) -> Iterator[Record]:
        """Yield the packets as ``Record`` values (``mirai`` left to the fingerprint)."""
        columns = [self.ts_ns.tolist(), self.src.tolist(), self.dst.tolist(), self.src_port.tolist(),
                   self.dst_port.tolist(), self.proto.tolist(), self.length.tolist(),
                   self.tcp_flags.tolist(), self.ttl.tolist(), self.tcp_seq.tolist()]
        address = _address_cache()
        for ts_ns, src, dst, src_port, dst_port, proto, length, flags, ttl, seq in zip(*columns):
            yield Record(
                ts_ns=ts_ns, src=address(src), dst=address(dst),
                src_port=None if src_port < 0 else src_port,
                dst_port=None if dst_port < 0 else dst_port,
                proto=proto, length=length,
                tcp_flags=None if flags < 0 else flags, ttl=ttl,
                tcp_seq=None if seq < 0 else seq,
            )


def _address_cache() -> Callable[[int], str]:
    cache: dict[int, str] = {}

    def address(value: int) -> str:
        text = cache.get(value)
        if text is None:
            text = cache[value] = str(ipaddress.IPv4Address(value))
        return text

    return address


@dataclass(slots=True)
class SenderTruth:
    """Packets, first and last event time per roster entry of one population."""

    packets: np.ndarray
    first_ns: np.ndarray
    last_ns: np.ndarray

    @staticmethod
    def empty(senders: int) -> SenderTruth:
        return SenderTruth(
            np.zeros(senders, dtype=np.int64),
            np.full(senders, np.iinfo(np.int64).max, dtype=np.int64),
            np.full(senders, np.iinfo(np.int64).min, dtype=np.int64),
        )


@dataclass(slots=True)
class RunCounters:
    """Totals of one run: records emitted, displaced and duplicated."""

    records: int = 0
    displaced: int = 0
    duplicates: int = 0


class Simulation:
    """One deterministic run: iterate ``batches()`` once, then read the truth.

    >>> from darkvec_stream.simulate import SimulationConfig
    >>> run = Simulation(SimulationConfig(days=1 / 24, scale=0.001, seed=1))
    >>> sum(len(batch) for batch in run.batches()) == run.counters.records
    True
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = resolve(config)
        self.models: list[PopulationModel] = build_models(self.config)
        self.truth = [SenderTruth.empty(model.senders) for model in self.models]
        self.counters = RunCounters()
        telescope = self.config.telescope
        self._dst_base = int(telescope.network_address)
        self._dst_count = telescope.num_addresses

    def batches(self) -> Iterator[PacketBatch]:
        """Yield packet batches in emission order, one per chunk of event time."""
        for _, batch in self.chunks():
            yield batch

    def chunks(self) -> Iterator[tuple[int, PacketBatch]]:
        """Yield ``(chunk start ns, packets emitted during that chunk)`` in order."""
        chunk_ns = self.config.chunk_s * NS_PER_S
        pending: PacketBatch | None = None
        pending_key = np.zeros(0, dtype=np.int64)
        chunk = 0
        for chunk_start in range(self.config.start_ns, self.config.end_ns, chunk_ns):
            chunk_end = min(chunk_start + chunk_ns, self.config.end_ns)
            batch, key = self._chunk(chunk, chunk_start, chunk_end)
            if pending is not None:
                batch = PacketBatch.concat([pending, batch])
                key = np.concatenate([pending_key, key])
            order = np.argsort(key, kind="stable")
            batch, key = batch.take(order), key[order]
            # Displaced records whose emission time falls after this chunk wait for the next one.
            last_chunk = chunk_end >= self.config.end_ns
            ready = len(batch) if last_chunk else int(np.searchsorted(key, chunk_end, side="left"))
            pending, pending_key = batch.take(np.arange(ready, len(batch))), key[ready:]
            emitted = batch.take(np.arange(ready))
            self._account(emitted)
            chunk += 1
            yield chunk_start, emitted

    def _chunk(self, chunk: int, start_ns: int, end_ns: int) -> tuple[PacketBatch, np.ndarray]:
        """Draw all populations' packets of one chunk; return them and their emission keys in time order."""
        parts, keys = [], []
        for index, model in enumerate(self.models):
            packets = self._population_packets(index, model, chunk, start_ns, end_ns)
            # Each population disorders its own packets with its own stream, so
            # resizing one population leaves the others' output unchanged.
            packets, key = self._disorder(packets, model.rng(4, chunk))
            parts.append(packets)
            keys.append(key)
        batch = PacketBatch.concat(parts)
        key = np.concatenate(keys)
        order = np.lexsort((key, batch.ts_ns))
        return batch.take(order), key[order]

    def _population_packets(self, index: int, model: PopulationModel, chunk: int,
                            start_ns: int, end_ns: int) -> PacketBatch:
        rng = model.rng(1, chunk)
        bursts = model.bursts_overlapping(start_ns, end_ns)
        low = np.maximum(bursts.start_ns, start_ns)
        high = np.minimum(bursts.end_ns, end_ns)
        length_ns = np.maximum(bursts.end_ns - bursts.start_ns, 1)

        # Poisson thinning: the packets of a burst that fall in this chunk are
        # Poisson with the burst mean times the share of the burst inside it.
        expected = bursts.packets * (high - low) / length_ns
        counts = rng.poisson(np.maximum(expected, 0.0))
        burst = np.repeat(np.arange(counts.size), counts)
        offset = (rng.random(burst.size) * (high - low)[burst]).astype(np.int64)
        resolution = self.config.time_resolution_ns
        ts_ns = low[burst] + offset
        ts_ns -= ts_ns % resolution

        sender = bursts.sender[burst]
        port, proto = model.draw_ports(sender, bursts.profile[burst], rng)
        return self._shape(index, model, ts_ns, sender, port.astype(np.int32), proto, rng)

    def _shape(self, index: int, model: PopulationModel, ts_ns: np.ndarray, sender: np.ndarray,
               port: np.ndarray, proto: np.ndarray, rng: np.random.Generator) -> PacketBatch:
        """Fill header fields the way the population's senders build their packets."""
        count = ts_ns.size
        tcp = proto == PROTO_TCP
        udp = proto == PROTO_UDP
        icmp = proto == PROTO_ICMP
        dst = (self._dst_base + rng.integers(0, self._dst_count, size=count)).astype(np.uint32)
        ephemeral = rng.integers(1024, 65536, size=count).astype(np.int32)
        if model.style == "backscatter":
            # A victim replies to spoofed probes from its service port to random client ports.
            src_port, dst_port = port, ephemeral
            flags = rng.choice(np.asarray([TCP_SYN | TCP_ACK, TCP_RST | TCP_ACK, TCP_RST]),
                               size=count, p=[0.6, 0.25, 0.15]).astype(np.int16)
            tcp_length = np.where(flags == (TCP_SYN | TCP_ACK), 44, 40)
            udp_length = 28 + 60 + (port.astype(np.int64) * 7919) % 400
            icmp_type = ICMP_ECHO_REPLY
        else:
            src_port, dst_port = ephemeral, port
            flags = np.full(count, TCP_SYN, dtype=np.int16)
            tcp_length = np.full(count, model.tcp_length)
            udp_length = 28 + (port.astype(np.int64) * 7919) % 120
            icmp_type = ICMP_ECHO_REQUEST
        tcp_seq = rng.integers(0, 1 << 32, size=count, dtype=np.int64)
        if model.mirai_fingerprint:
            tcp_seq = dst.astype(np.int64)
        else:
            # A random sequence number matches the destination with chance 2**-32;
            # nudge those so the fingerprint is exact truth.
            tcp_seq = np.where(tcp_seq == dst.astype(np.int64), tcp_seq ^ 1, tcp_seq)
        return PacketBatch(
            ts_ns=ts_ns,
            population=np.full(count, index, dtype=np.int16),
            sender=sender.astype(np.int64),
            src=model.addresses[sender],
            dst=dst,
            src_port=np.where(icmp, NULL, src_port).astype(np.int32),
            dst_port=np.where(icmp, NULL, dst_port).astype(np.int32),
            proto=proto.astype(np.uint8),
            length=np.select([tcp, udp], [tcp_length, udp_length], 84).astype(np.int32),
            tcp_flags=np.where(tcp, flags, NULL).astype(np.int16),
            ttl=model.ttl[sender],
            tcp_seq=np.where(tcp, tcp_seq, NULL).astype(np.int64),
            icmp_type=np.where(icmp, icmp_type, NULL).astype(np.int16),
        )

    def _disorder(self, batch: PacketBatch, rng: np.random.Generator) -> tuple[PacketBatch, np.ndarray]:
        """Duplicate and displace shares of a time-ordered batch; return it with emission keys."""
        count = len(batch)
        order = np.argsort(batch.ts_ns, kind="stable")
        batch = batch.take(order)
        repeats = 1 + (rng.random(count) < self.config.duplicate_share)
        batch = batch.take(np.repeat(np.arange(count), repeats))
        key = batch.ts_ns.copy()
        displaced = rng.random(len(batch)) < self.config.out_of_order_share
        max_delay_ns = max(round(self.config.max_displacement_s * NS_PER_S), 1)
        key[displaced] += rng.integers(1, max_delay_ns, size=int(displaced.sum()), endpoint=True)
        self.counters.duplicates += int(repeats.sum() - count)
        self.counters.displaced += int(displaced.sum())
        return batch, key

    def _account(self, batch: PacketBatch) -> None:
        self.counters.records += len(batch)
        for index, truth in enumerate(self.truth):
            mine = batch.population == index
            if not mine.any():
                continue
            sender, ts_ns = batch.sender[mine], batch.ts_ns[mine]
            np.add.at(truth.packets, sender, 1)
            np.minimum.at(truth.first_ns, sender, ts_ns)
            np.maximum.at(truth.last_ns, sender, ts_ns)
