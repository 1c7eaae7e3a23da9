"""The Mirai scanning fingerprint, computed from one record's header fields.

Mirai and its descendants send TCP SYN probes whose sequence number equals
the destination IPv4 address read as a big-endian 32-bit integer. This
module only recognises that fingerprint; it does not label senders.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from darkvec_stream.ingest.record import PROTO_TCP, TCP_ACK, TCP_SYN, Record


@lru_cache(maxsize=65536)
def ipv4_to_int(address: str) -> int | None:
    """Return a dotted-quad IPv4 address as an unsigned 32-bit integer.

    Returns None for anything else (IPv6, anonymised tokens, garbage), so a
    malformed destination never raises. The cache exists because a telescope
    has few destination addresses and the check runs once per packet.
    """
    parts = address.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3:
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = (value << 8) | octet
    return value


def is_mirai(record: Record) -> bool:
    """Return whether the record carries the Mirai fingerprint.

    A flag set by the source (``record.mirai`` True or False) wins, because
    anonymised traces replace addresses and only keep that flag. Otherwise
    the record must be TCP with SYN set and ACK clear, and its ``tcp_seq``
    must equal the destination IPv4 address as a big-endian 32-bit integer.
    """
    flag = record.mirai
    if flag is not None:
        return flag
    if record.proto != PROTO_TCP or record.tcp_seq is None or record.dst is None:
        return False
    flags = record.tcp_flags
    if flags is None or not flags & TCP_SYN or flags & TCP_ACK:
        return False
    return ipv4_to_int(record.dst) == record.tcp_seq


def mirai_mask(
    mirai_flags: np.ndarray,
    protos: np.ndarray,
    tcp_flags: np.ndarray,
    tcp_seqs: np.ndarray,
    destinations: Sequence[str | None],
) -> np.ndarray:
    """Return ``is_mirai`` for columns of records, as a boolean array.

    Missing values are -1 in every integer column; ``mirai_flags`` is
    1 (True), 0 (False) or -1 (no opinion). Destinations are converted once
    per distinct address, because a telescope has few of them.
    """
    candidates = (
        (mirai_flags < 0)
        & (protos == PROTO_TCP)
        & (tcp_flags >= 0)
        & ((tcp_flags & TCP_SYN) != 0)
        & ((tcp_flags & TCP_ACK) == 0)
        & (tcp_seqs >= 0)
    )
    result = mirai_flags == 1
    if candidates.any():
        address_of = {address: _address_value(address) for address in dict.fromkeys(destinations)}
        addresses = np.fromiter(map(address_of.__getitem__, destinations), dtype=np.int64, count=len(destinations))
        result |= candidates & (tcp_seqs == addresses)
    return result


def _address_value(address: str | None) -> int:
    value = ipv4_to_int(address) if isinstance(address, str) else None
    return -2 if value is None else value
