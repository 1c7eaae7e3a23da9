"""Ingest stage: decode raw telescope input into ``Record`` values.

Decoders are chosen by name (``FORMATS``). Every raw record ends up either
as a ``Record`` or as a ``Rejected`` with a reason, so for any input the
records accepted plus the records rejected equal the records read.
Windowing, deduplication and sender filtering belong to later stages.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Iterator

from darkvec_stream.errors import ConfigError
from darkvec_stream.ingest.base import Batch, Decoder
from darkvec_stream.ingest.csvtext import PRESETS as CSV_PRESETS
from darkvec_stream.ingest.csvtext import CsvDecoder, DarkvecCsvDecoder
from darkvec_stream.ingest.jsonl import PRESETS as JSONL_PRESETS
from darkvec_stream.ingest.jsonl import JsonlDecoder
from darkvec_stream.ingest.pcap import PcapDecoder
from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.ingest.wire import WireDecoder
from darkvec_stream.ingest.zeek import ZeekConnDecoder

_DECODERS: dict[str, type[Decoder]] = {
    "record-csv": WireDecoder,
    "darkvec-csv": DarkvecCsvDecoder,
    "csv": CsvDecoder,
    "jsonl": JsonlDecoder,
    "zeek-conn": ZeekConnDecoder,
    "pcap": PcapDecoder,
}
FORMATS = tuple(_DECODERS)
PRESETS_BY_FORMAT = {"csv": tuple(CSV_PRESETS), "jsonl": tuple(JSONL_PRESETS)}

__all__ = [
    "FORMATS",
    "Batch",
    "Decoder",
    "Origin",
    "Record",
    "Rejected",
    "get_decoder",
    "read_batches",
    "read_file",
]


def get_decoder(format: str, **options: Any) -> Decoder:
    """Return a decoder for ``format`` built with its keyword ``options``.

    Raises ``ConfigError`` for an unknown format, an unknown option or an
    invalid option value such as an unknown preset.
    """
    decoder_class = _DECODERS.get(format)
    if decoder_class is None:
        raise ConfigError(f"unknown input format {format!r}; allowed: {', '.join(FORMATS)}")
    allowed = [
        name for name, parameter in inspect.signature(decoder_class).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(_unknown_options_message(format, unknown, allowed))
    return decoder_class(**options)


def _unknown_options_message(format: str, unknown: list[str], allowed: list[str]) -> str:
    message = (
        f"unknown option {', '.join(unknown)} for format {format!r}; decoder options come from "
        "input.decoder_options or kafka.decoder_options in the configuration and from --preset or "
        f"--option on the command line; options of {format!r}: {', '.join(allowed) or '(none)'}"
    )
    if "preset" in unknown:
        presets = ", ".join(f"{name} ({', '.join(sorted(names))})" for name, names in PRESETS_BY_FORMAT.items())
        message += f"; presets exist only for {presets}"
    return message


def read_file(path: str | Path, format: str, **options: Any) -> Iterator[Record | Rejected]:
    """Decode a whole file (gzip detected by its magic bytes) in file order.

    Rejects carry ``Origin(source=path, line=n)``; for pcap ``n`` is the
    packet number. A missing or unreadable file raises ``InputError`` when
    iteration starts.
    """
    decoder = get_decoder(format, **options)
    return decoder.read_file(Path(path))


def read_batches(path: str | Path, format: str, **options: Any) -> Iterator[Batch]:
    """Decode a whole file as ``(records, rejects)`` pairs, one per block read.

    Faster than ``read_file`` for bulk work such as replay, because records
    stay in lists; the order between a block's records and rejects is lost.
    """
    decoder = get_decoder(format, **options)
    return decoder.read_batches(Path(path))
