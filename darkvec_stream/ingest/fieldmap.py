"""Converter names for mapped formats (csv, jsonl) and assembly of a Record.

A field map says which converter turns a column or JSON value into each
``Record`` field. This module validates those names and builds the
converters; it does not know where the values come from.
"""

from __future__ import annotations

from typing import Callable, Mapping

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest import fields as convert
from darkvec_stream.ingest.address import AddressCache, ipv4_from_integer
from darkvec_stream.ingest.errors import BAD_ADDRESS, BAD_TIMESTAMP, RecordError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_ICMPV6, Record

Converter = Callable[[convert.Scalar, str], object]

RECORD_FIELDS = Record._fields
REQUIRED_FIELDS = ("ts_ns", "src")
ADDRESS_CONVERTERS = ("address", "integer_address", "any_address", "token")
TIMESTAMP_CONVERTERS = ("epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "iso", "auto", "<strptime format>")
DEFAULT_CONVERTERS = {"ts_ns": "epoch_s", "src": "address", "dst": "address"}
# The one converter name each numeric field accepts (its default).
NUMERIC_CONVERTER_NAMES = {"proto": "protocol", "tcp_flags": "tcp_flags", "mirai": "flag"}

_MAX_UINT63 = 2**63 - 1
_ICMP_PROTOCOLS = (PROTO_ICMP, PROTO_ICMPV6)
_new_record = tuple.__new__

_NUMERIC_CONVERTERS: dict[str, Converter] = {
    "src_port": convert.parse_port,
    "dst_port": convert.parse_port,
    "proto": convert.parse_protocol,
    "length": lambda value, field: convert.parse_integer(value, field, _MAX_UINT63),
    "tcp_flags": convert.parse_tcp_flags,
    "ttl": lambda value, field: convert.parse_integer(value, field, 255),
    "tcp_seq": lambda value, field: convert.parse_integer(value, field, 2**32 - 1),
    "packets": lambda value, field: convert.parse_integer(value, field, _MAX_UINT63),
    "mirai": convert.parse_mirai,
}


def check_field_names(mapping: Mapping[str, object], setting: str) -> None:
    """Raise ``ConfigError`` when a map names something that is not a Record field."""
    unknown = [name for name in mapping if name not in RECORD_FIELDS]
    if unknown:
        raise ConfigError(
            f"{setting} names unknown record fields {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(RECORD_FIELDS)}"
        )


def check_required(mapping: Mapping[str, object], setting: str, hint: str = "") -> None:
    """Raise ``ConfigError`` when a map has no entry for ``ts_ns`` or ``src``.

    ``hint`` tells the user how to supply the entries, and ends the message.
    """
    missing = [name for name in REQUIRED_FIELDS if name not in mapping]
    if missing:
        message = f"{setting} has no entry for {', '.join(missing)}; ts_ns and src are required"
        raise ConfigError(f"{message}: {hint}" if hint else message)


def build_converters(
    names: Mapping[str, str], mapped_fields: list[str], *, allow_tokens: bool, address_cache_entries: int
) -> dict[str, Converter]:
    """Return a converter for every mapped field, validating converter names."""
    merged = {**DEFAULT_CONVERTERS, **names}
    check_field_names(merged, "converters")
    addresses = AddressCache(allow_token=allow_tokens, max_entries=address_cache_entries)
    any_addresses = AddressCache(allow_token=allow_tokens, accept_integer=True, max_entries=address_cache_entries)
    converters: dict[str, Converter] = {}
    for field in mapped_fields:
        kind = merged.get(field, NUMERIC_CONVERTER_NAMES.get(field, "integer"))
        if field == "ts_ns":
            converters[field] = _timestamp_converter(kind)
        elif field in ("src", "dst"):
            converters[field] = _address_converter(field, kind, addresses, any_addresses)
        else:
            expected = NUMERIC_CONVERTER_NAMES.get(field, "integer")
            if kind != expected:
                raise ConfigError(f"invalid converter {kind!r} for {field}; allowed: {expected!r}")
            converters[field] = _NUMERIC_CONVERTERS[field]
    return converters


def _timestamp_converter(kind: str) -> Converter:
    timestamp = convert.timestamp_converter(kind)
    if timestamp is None:
        raise ConfigError(
            f"invalid timestamp converter {kind!r} for ts_ns; allowed: {', '.join(TIMESTAMP_CONVERTERS)}"
        )
    return timestamp


def _address_converter(
    field: str, kind: str, addresses: AddressCache, any_addresses: AddressCache
) -> Converter:
    if kind == "address":
        return _with_field(addresses.canonical)
    if kind == "any_address":
        return _with_field(any_addresses.canonical)
    if kind == "integer_address":
        return _with_field(_memoised(ipv4_from_integer, addresses.max_entries))
    if kind == "token":
        return _keep_token
    raise ConfigError(
        f"invalid address converter {kind!r} for {field}; allowed: {', '.join(ADDRESS_CONVERTERS)}"
    )


def _with_field(canonical: Callable[[str], str]) -> Converter:
    def convert_address(value: convert.Scalar, field: str) -> str:
        # JSON exporters may write an IPv4 as a number.
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str):
            raise RecordError(BAD_ADDRESS, f"{field}: invalid address {value!r}")
        try:
            return canonical(text)
        except RecordError as error:
            raise RecordError(error.reason, f"{field}: {error.detail}") from None

    return convert_address


def _memoised(canonical: Callable[[str], str], max_entries: int) -> Callable[[str], str]:
    """Cache a pure address conversion, cleared when it reaches ``max_entries``."""
    results: dict[str, str] = {}

    def cached(text: str) -> str:
        found = results.get(text)
        if found is None:
            found = canonical(text)
            if len(results) >= max_entries:
                results.clear()
            results[text] = found
        return found

    return cached


def _keep_token(value: convert.Scalar, field: str) -> str:
    if not isinstance(value, str) or not value or value.isspace():
        raise RecordError(BAD_ADDRESS, f"{field}: invalid token {value!r}")
    return value


FIELD_POSITIONS = {name: position for position, name in enumerate(RECORD_FIELDS)}
_PACKETS = FIELD_POSITIONS["packets"]
_PROTO = FIELD_POSITIONS["proto"]
_SRC_PORT = FIELD_POSITIONS["src_port"]
_DST_PORT = FIELD_POSITIONS["dst_port"]
_EMPTY_VALUES: list[object] = [None] * len(RECORD_FIELDS)
_EMPTY_VALUES[_PACKETS] = 1


def empty_values() -> list[object]:
    """Return Record values with every field null and ``packets`` at 1."""
    return _EMPTY_VALUES.copy()


def build_record(values: list[object]) -> Record:
    """Assemble a Record from converted values in field order.

    ICMP has no ports, and some exporters put the ICMP type and code in the
    port fields, so ports are dropped for ICMP and ICMPv6.
    """
    if values[0] is None:
        raise RecordError(BAD_TIMESTAMP, "ts_ns: missing timestamp")
    if values[1] is None:
        raise RecordError(BAD_ADDRESS, "src: missing sender address")
    if values[_PROTO] in _ICMP_PROTOCOLS:
        values[_SRC_PORT] = values[_DST_PORT] = None
    return _new_record(Record, values)
