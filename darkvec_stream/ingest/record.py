"""The one record type every decoder produces, and where a record came from.

A record is one packet, or one flow when ``packets`` is above 1. Addresses
are canonical strings (``ipaddress`` compressed form) so that one sender is
always one token, whatever the decoder read. Anonymised traces that replace
addresses with opaque tokens keep those tokens unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


class Record(NamedTuple):
    """One packet or flow seen by the telescope.

    Every field but ``ts_ns`` and ``src`` is nullable because decoders differ
    in what they carry. ``mirai`` is a fingerprint flag that the source
    computed itself (anonymised traces), and ``None`` when the source has no
    opinion, in which case the fingerprint is computed from ``tcp_seq``.
    """

    ts_ns: int
    src: str
    dst: str | None = None
    src_port: int | None = None
    dst_port: int | None = None
    proto: int | None = None
    length: int | None = None
    tcp_flags: int | None = None
    ttl: int | None = None
    tcp_seq: int | None = None
    packets: int = 1
    mirai: bool | None = None


class Origin(NamedTuple):
    """Where a raw record was read: a Kafka position or a file line.

    For Kafka, ``source`` is the topic and ``partition``/``offset`` are set.
    For files, ``source`` is the path and ``line`` is 1-based (for pcap it
    is the 1-based packet number).
    """

    source: str
    partition: int | None = None
    offset: int | None = None
    line: int | None = None


class Rejected(NamedTuple):
    """A raw record that could not be decoded, kept for the dead-letter sink."""

    reason: str
    detail: str
    raw: bytes
    origin: Origin
