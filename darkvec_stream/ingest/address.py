"""Canonical sender and destination tokens, whatever notation a decoder read.

One sender must be one vocabulary word, so every decoder passes addresses
through here. Accepted: dotted IPv4, IPv4 as an unsigned 32-bit integer,
IPv6 (returned in ``ipaddress`` compressed form) and IPv4-mapped IPv6
(folded to IPv4). Opaque tokens from anonymised traces pass only where the
caller allows them.
This module does not resolve names and does not decide which senders matter.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from darkvec_stream.ingest.errors import RecordError

# Anonymised traces replace addresses with identifiers such as
# ``src_ipaddr12``. A token must start with a letter or underscore so that a
# broken numeric address ("1.2.3.256") is still rejected, not kept as a token.
_TOKEN_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")

_MAX_UINT32 = 0xFFFFFFFF


def canonical_address(text: str, *, allow_token: bool = False) -> str:
    """Return the canonical token of an address written as text.

    Accepts dotted IPv4, IPv6 (any valid notation) and, when ``allow_token``
    is set, an opaque token. Raises ``RecordError('bad_address')`` otherwise.
    """
    if _is_plain_dotted_ipv4(text):
        return text
    if ":" in text:
        return _canonical_ipv6(text)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    if allow_token and _TOKEN_PATTERN.fullmatch(text):
        return text
    raise RecordError("bad_address", f"invalid address {text!r}")


def canonical_address_or_integer(text: str, *, allow_token: bool = False) -> str:
    """Like ``canonical_address`` but also accept IPv4 as a decimal integer."""
    if text.isdigit() and text.isascii():
        return ipv4_from_integer(text)
    return canonical_address(text, allow_token=allow_token)


def ipv4_from_integer(text: str) -> str:
    """Return dotted IPv4 for an unsigned 32-bit integer written in decimal."""
    stripped = text[:-2] if text.endswith(".0") else text
    if not (stripped.isdigit() and stripped.isascii()):
        raise RecordError("bad_address", f"invalid integer IPv4 address {text!r}")
    value = int(stripped)
    if value > _MAX_UINT32:
        raise RecordError(
            "bad_address", f"integer IPv4 address {text!r} is above 4294967295"
        )
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def ipv4_from_bytes(packed: bytes) -> str:
    """Return dotted IPv4 for 4 bytes in network order."""
    return socket.inet_ntoa(packed)


def ipv6_from_bytes(packed: bytes) -> str:
    """Return the canonical token of 16 bytes of IPv6, IPv4-mapped folded."""
    address = ipaddress.IPv6Address(packed)
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else address.compressed


def _canonical_ipv6(text: str) -> str:
    if "%" in text:
        # A zone index names a local interface: the same text can be two
        # different hosts, so it cannot be a sender token.
        raise RecordError("bad_address", f"scoped IPv6 address {text!r} not allowed")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise RecordError("bad_address", f"invalid IPv6 address {text!r}") from None
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else address.compressed


def _is_plain_dotted_ipv4(text: str) -> bool:
    """Check dotted IPv4 that is already canonical (no leading zeros)."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (part.isdigit() and part.isascii() and len(part) <= 3):
            return False
        if len(part) > 1 and part[0] == "0":
            return False
        if int(part) > 255:
            return False
    return True


class AddressCache:
    """Memoised ``canonical_address`` that also interns the result.

    Darknet senders repeat a lot, so a dictionary lookup replaces parsing
    on most records, and every occurrence of a sender shares one string
    object downstream. The cache is cleared when it reaches ``max_entries``
    so memory stays bounded on feeds with many distinct senders.
    """

    def __init__(
        self,
        *,
        allow_token: bool = False,
        accept_integer: bool = False,
        max_entries: int = 262_144,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.allow_token = allow_token
        self.accept_integer = accept_integer
        self.max_entries = max_entries
        self._canonical: dict[str, str] = {}

    def canonical(self, text: str) -> str:
        """Return the canonical token of ``text`` or raise ``RecordError``."""
        found = self._canonical.get(text)
        if found is not None:
            return found
        if self.accept_integer:
            found = canonical_address_or_integer(text, allow_token=self.allow_token)
        else:
            found = canonical_address(text, allow_token=self.allow_token)
        if len(self._canonical) >= self.max_entries:
            self._canonical.clear()
        self._canonical[text] = found
        return found
