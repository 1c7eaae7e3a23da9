"""Label sources: read scanner lists of every common format into labelled networks.

One source is a file or a directory of files, each in one of these formats:
``csv`` (an IP column and a label column), ``list`` (one IP or CIDR per line,
``#`` comments), ``misp`` (a MISP warning list), ``nict`` (the NICT survey
scanner JSON) and ``nict-scanorg`` (the NICT organisation table, which names
organisations but lists no addresses). Merging several sources and looking
senders up is the label book's job, not this module's.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.labels.addresses import NetworkKey, parse_network
from darkvec_stream.labels.normalise import (
    label_from_file_name,
    label_from_host,
    label_from_misp_name,
    normalise_label,
    slug,
)

logger = logging.getLogger(__name__)

SOURCE_FORMATS = ("auto", "csv", "list", "misp", "nict", "nict-scanorg")

# Header names recognised when a CSV source does not name its columns.
IP_COLUMNS = ("ip", "ip_address", "ipaddress", "address", "addr", "src", "src_ip", "saddr", "cidr", "network", "prefix")
LABEL_COLUMNS = ("label", "class", "scanner", "organisation", "organization", "org", "category", "tag")

_GZIP_MAGIC = b"\x1f\x8b"
_INVALID_EXAMPLES_LOGGED = 3
# Shortest prefixes a source may list, in bits. Scanner lists name hosts and
# small networks, so a /0 to /7 entry is almost certainly a mistake, and it
# would give its label to a large share of all senders.
MIN_PREFIX_V4 = 8
MIN_PREFIX_V6 = 16


@dataclass(frozen=True)
class LabelSource:
    """Configuration of one label source.

    ``label``, when given, is applied to every entry of the source and
    overrides labels read from the file. Otherwise each entry keeps the label
    its row carries, falling back to a label derived from the file name.
    ``label_from_comment`` (list format) takes the label from an inline
    comment naming a host (``1.2.3.4 # scan.censys.io``). ``label`` or the file
    name then only serves rows whose comment names no organisation.
    A directory source reads every file in it in name order, skipping names
    that start with ``.`` or ``_`` (aggregates such as ``_ALL.txt``) and
    ``.md`` files. Entries broader than ``min_prefix_v4`` (IPv4) or
    ``min_prefix_v6`` (IPv6) prefix bits are skipped with a warning and
    counted in ``SourceStats.too_broad``.
    """

    name: str
    path: Path
    format: str = "auto"
    label: str | None = None
    priority: int = 0
    label_from_comment: bool = False
    ip_column: str | None = None
    label_column: str | None = None
    min_prefix_v4: int = MIN_PREFIX_V4
    min_prefix_v6: int = MIN_PREFIX_V6

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError(f"label source at {self.path}: name is empty; give each source a name")
        if self.format not in SOURCE_FORMATS:
            raise ConfigError(
                f"label source {self.name!r}: format {self.format!r} is invalid; "
                f"use one of {', '.join(SOURCE_FORMATS)}"
            )
        object.__setattr__(self, "path", Path(self.path))
        if self.label is not None:
            canonical = normalise_label(self.label)
            if canonical is None:
                raise ConfigError(
                    f"label source {self.name!r}: label {self.label!r} means 'no label'; "
                    "remove it or give an organisation name"
                )
            object.__setattr__(self, "label", canonical)
        self._check_prefix("min_prefix_v4", self.min_prefix_v4, 32)
        self._check_prefix("min_prefix_v6", self.min_prefix_v6, 128)

    def _check_prefix(self, key: str, value: object, bits: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= bits:
            raise ConfigError(
                f"label source {self.name!r}: {key} {value!r} is invalid; "
                f"use a prefix length from 0 to {bits} (0 accepts every prefix)"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> LabelSource:
        """Build a source from one ``labels.sources`` entry of the configuration."""
        allowed = {
            "name", "path", "format", "label", "priority", "label_from_comment", "ip_column", "label_column",
            "min_prefix_v4", "min_prefix_v6",
        }
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise ConfigError(
                f"label source {mapping.get('name', mapping.get('path'))!r}: unknown keys {unknown}; "
                f"allowed keys are {sorted(allowed)}"
            )
        if "path" not in mapping:
            raise ConfigError(f"label source {mapping!r}: 'path' is missing")
        path = Path(str(mapping["path"]))
        name = str(mapping.get("name") or path.stem)
        priority = mapping.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ConfigError(f"label source {name!r}: priority {priority!r} is not an integer")
        return cls(
            name=name,
            path=path,
            format=str(mapping.get("format", "auto")),
            label=mapping.get("label"),
            priority=priority,
            label_from_comment=bool(mapping.get("label_from_comment", False)),
            ip_column=mapping.get("ip_column"),
            label_column=mapping.get("label_column"),
            min_prefix_v4=mapping.get("min_prefix_v4", MIN_PREFIX_V4),
            min_prefix_v6=mapping.get("min_prefix_v6", MIN_PREFIX_V6),
        )


@dataclass
class SourceStats:
    """Counts from loading one source; ``entries`` counts labelled rows read."""

    files: int = 0
    entries: int = 0
    distinct: int = 0
    unlabelled: int = 0
    duplicates: int = 0
    conflicts: int = 0
    invalid: int = 0
    too_broad: int = 0
    organisations: int = 0


@dataclass(frozen=True)
class LoadedSource:
    """The parsed content of one source and what identifies its version.

    ``networks`` maps each network to its label. When a network appears twice
    in one source with different labels, the first row wins and the second is
    counted in ``stats.conflicts``. ``file_state`` contains ``(path, mtime_ns,
    size_bytes)`` per file, taken before reading, for change detection.
    """

    source: LabelSource
    networks: dict[NetworkKey, str]
    organisations: dict[str, dict[str, str]]
    stats: SourceStats
    sha256: str
    file_state: tuple[tuple[str, int, int], ...]


class _Row(NamedTuple):
    line: int
    address: str
    label: str | None  # canonical label, or None for a row marked "no label"


@dataclass
class _Accumulator:
    networks: dict[NetworkKey, str] = field(default_factory=dict)
    organisations: dict[str, dict[str, str]] = field(default_factory=dict)
    stats: SourceStats = field(default_factory=SourceStats)


def source_files(source: LabelSource) -> list[Path]:
    """List the files of a source: the path itself or the eligible files of a directory."""
    path = source.path
    if path.is_dir():
        return sorted(
            child
            for child in path.iterdir()
            if child.is_file() and not child.name.startswith((".", "_")) and child.suffix.lower() != ".md"
        )
    if not path.exists():
        raise InputError(f"label source {source.name!r}: {path} not found; check the path in the configuration")
    return [path]


def file_state(source: LabelSource) -> tuple[tuple[str, int, int], ...]:
    """Return ``(path, mtime_ns, size_bytes)`` for each file of a source."""
    state = []
    for path in source_files(source):
        stat = path.stat()
        state.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(state)


def load_source(source: LabelSource) -> LoadedSource:
    """Read and parse every file of a source.

    Raise ``InputError`` when a file cannot be read or parsed as a whole
    (unknown format, broken JSON, no usable column, or no valid entry at all).
    Single bad lines are skipped and counted in ``stats.invalid``.
    """
    state = file_state(source)
    digest = hashlib.sha256()
    accumulator = _Accumulator()
    single_file = not source.path.is_dir()
    for path_text, _, _ in state:
        path = Path(path_text)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(f"label source {source.name!r}: cannot read {path}: {error}") from error
        if not single_file:
            digest.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
        _load_file(source, path, data, accumulator)
        accumulator.stats.files += 1
    accumulator.stats.distinct = len(accumulator.networks)
    accumulator.stats.organisations = len(accumulator.organisations)
    return LoadedSource(
        source=source,
        networks=accumulator.networks,
        organisations=accumulator.organisations,
        stats=accumulator.stats,
        sha256=digest.hexdigest(),
        file_state=state,
    )


def decode_text(data: bytes, path: Path) -> str:
    """Decompress gzip (by magic bytes) and decode UTF-8; bad bytes become U+FFFD."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise InputError(f"{path}: broken gzip data: {error}; re-download or decompress the file") from error
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def detect_format(text: str, path: Path) -> str:
    """Guess a file's format from its content; raise ``InputError`` when unsure."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "misp"
    if stripped.startswith("["):
        return "nict"
    for line in stripped.splitlines():
        content = line.strip()
        if not content or content.startswith("#"):
            continue
        if "," in content:
            header = [slug(cell) for cell in content.split(",")]
            return "nict-scanorg" if "scanner_name" in header else "csv"
        try:
            parse_network(content.split("#", 1)[0].split()[0])
        except ValueError:
            raise InputError(
                f"{path}: cannot detect the label list format from line {content[:60]!r}; "
                f"set 'format' to one of {', '.join(SOURCE_FORMATS[1:])}"
            ) from None
        return "list"
    return "list"


def _load_file(source: LabelSource, path: Path, data: bytes, accumulator: _Accumulator) -> None:
    text = decode_text(data, path)
    file_format = source.format if source.format != "auto" else detect_format(text, path)
    default_label = source.label or label_from_file_name(path)
    if file_format == "nict-scanorg":
        _read_scanorg(text, path, accumulator)
        return
    rows = _rows(file_format, source, path, text, default_label)
    before = (accumulator.stats.entries, accumulator.stats.unlabelled)
    invalid = _add_rows(rows, source, path, accumulator)
    read = (accumulator.stats.entries - before[0]) + (accumulator.stats.unlabelled - before[1])
    if invalid and not read:
        raise InputError(
            f"label source {source.name!r}: no valid entry in {path} ({invalid} invalid lines); "
            "check the file or its 'format'"
        )


def _rows(file_format: str, source: LabelSource, path: Path, text: str, default_label: str | None) -> Iterator[_Row]:
    if file_format == "list":
        return _read_list(text, source, default_label)
    if file_format == "csv":
        return _read_csv(text, source, path, default_label)
    if file_format == "misp":
        return _read_misp(text, source, path, default_label)
    return _read_nict(text, source, path)


def _add_rows(rows: Iterator[_Row], source: LabelSource, path: Path, accumulator: _Accumulator) -> int:
    stats = accumulator.stats
    networks = accumulator.networks
    invalid = 0
    for row in rows:
        try:
            key = parse_network(row.address)
        except ValueError:
            invalid += 1
            if invalid <= _INVALID_EXAMPLES_LOGGED:
                logger.warning("label source %s: skipped invalid address %r at %s:%d", source.name, row.address, path, row.line)
            continue
        if _too_broad(key, source):
            stats.too_broad += 1
            _warn_too_broad(key, row, source, path)
            continue
        if row.label is None:
            stats.unlabelled += 1
            continue
        stats.entries += 1
        previous = networks.get(key)
        if previous is None:
            networks[key] = row.label
        elif previous == row.label:
            stats.duplicates += 1
        else:
            stats.conflicts += 1
    stats.invalid += invalid
    return invalid


def _too_broad(key: NetworkKey, source: LabelSource) -> bool:
    minimum = source.min_prefix_v4 if key.version == 4 else source.min_prefix_v6
    return key.prefix_len < minimum


def _warn_too_broad(key: NetworkKey, row: _Row, source: LabelSource, path: Path) -> None:
    # Every such line is logged: there are few, and each one would have
    # labelled a large share of the address space.
    setting = "min_prefix_v4" if key.version == 4 else "min_prefix_v6"
    minimum = source.min_prefix_v4 if key.version == 4 else source.min_prefix_v6
    logger.warning(
        "label source %s: skipped %r at %s:%d: /%d is broader than %s /%d; "
        "lower %s for this source if the entry is meant",
        source.name, row.address, path, row.line, key.prefix_len, setting, minimum, setting,
    )


def _require_label(label: str | None, source: LabelSource, path: Path) -> str:
    if label is None:
        raise InputError(f"label source {source.name!r}: {path} gives no label; set 'label' for this source")
    return label


def _read_list(text: str, source: LabelSource, default_label: str | None) -> Iterator[_Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        content, _, comment = line.partition("#")
        tokens = content.split()
        if not tokens:
            continue
        label = default_label
        if source.label_from_comment and comment.strip():
            label = label_from_host(comment) or default_label
        yield _Row(number, tokens[0], label)


def _read_csv(text: str, source: LabelSource, path: Path, default_label: str | None) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    ip_index, label_index, header_row = _csv_columns(header, source, path)
    if label_index is None:
        default_label = _require_label(default_label, source, path)
    rows: Iterator[list[str]] = reader
    if not header_row:
        rows = _prepend(header, reader)
    start = 1 if header_row else 0
    for number, cells in enumerate(rows, start=start + 1):
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        if ip_index >= len(cells):
            yield _Row(number, "", None if label_index is not None else default_label)
            continue
        label = default_label
        if source.label is None and label_index is not None:
            label = normalise_label(cells[label_index]) if label_index < len(cells) else None
        yield _Row(number, cells[ip_index].strip(), label)


def _prepend(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _csv_columns(header: list[str], source: LabelSource, path: Path) -> tuple[int, int | None, bool]:
    """Return the IP column, the label column and whether the first row is a header."""
    names = [slug(cell) for cell in header]
    try:
        parse_network(header[0].strip())
        # No header: the first column is the address, the second (if any) the label.
        return 0, (1 if len(header) > 1 else None), False
    except ValueError:
        pass
    ip_index = _find_column(names, source.ip_column, IP_COLUMNS)
    if ip_index is None:
        raise InputError(
            f"label source {source.name!r}: no IP column in {path} header {header}; "
            f"name it one of {', '.join(IP_COLUMNS)} or set 'ip_column'"
        )
    label_index = _find_column(names, source.label_column, LABEL_COLUMNS)
    if source.label_column is not None and label_index is None:
        raise InputError(f"label source {source.name!r}: label_column {source.label_column!r} not in {path} header {header}")
    return ip_index, label_index, True


def _find_column(names: list[str], wanted: str | None, candidates: tuple[str, ...]) -> int | None:
    if wanted is not None:
        key = slug(wanted)
        return names.index(key) if key in names else None
    for candidate in candidates:
        if candidate in names:
            return names.index(candidate)
    return None


def _load_json(text: str, source: LabelSource, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"label source {source.name!r}: {path} is not valid JSON: {error}") from error


def _read_misp(text: str, source: LabelSource, path: Path, default_label: str | None) -> Iterator[_Row]:
    document = _load_json(text, source, path)
    if not isinstance(document, dict) or not isinstance(document.get("list"), list):
        raise InputError(f"label source {source.name!r}: {path} is not a MISP warning list (no 'list' array)")
    list_type = document.get("type", "cidr")
    if list_type not in ("cidr", "ip"):
        raise InputError(
            f"label source {source.name!r}: MISP list type {list_type!r} in {path} is not supported; "
            "only 'cidr' lists carry addresses"
        )
    label = source.label or label_from_misp_name(str(document.get("name", ""))) or default_label
    label = _require_label(label, source, path)
    for number, item in enumerate(document["list"], start=1):
        yield _Row(number, str(item).strip(), label)


def _read_nict(text: str, source: LabelSource, path: Path) -> Iterator[_Row]:
    document = _load_json(text, source, path)
    if not isinstance(document, list):
        raise InputError(f"label source {source.name!r}: {path} is not a JSON array of {{ip, scanner}} objects")
    for number, item in enumerate(document, start=1):
        if not isinstance(item, dict) or "ip" not in item:
            yield _Row(number, "", source.label)
            continue
        label = source.label or normalise_label(str(item.get("scanner", "")))
        yield _Row(number, str(item["ip"]).strip(), label)


def _read_scanorg(text: str, path: Path, accumulator: _Accumulator) -> None:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "scanner name" not in [name.strip().lower() for name in reader.fieldnames]:
        raise InputError(f"{path}: not a NICT organisation table (no 'scanner name' column)")
    for row in reader:
        values = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        label = normalise_label(values.get("scanner name", ""))
        if label is None:
            continue
        accumulator.organisations.setdefault(
            label,
            {"name": values.get("scanner name", ""), "type": values.get("type", ""), "reference": values.get("reference", "")},
        )
