"""The label book: ground truth merged from every label source, with fast lookups.

The book returns the label a sender carries and the source it came from,
for single addresses and CIDR ranges, IPv4 and IPv6, plus the Mirai
fingerprint. It reloads changed source files without a restart. It does not
guess labels for unlabelled senders; that is the kNN labeller's job.

Conflict rule, applied per sender: the source with the higher ``priority``
wins; at equal priority the most specific (longest) prefix wins; then the
source listed first wins. The Mirai fingerprint is one more source with its
own priority that loses ties against every file source.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from darkvec_stream.errors import ConfigError, DarkvecError, StateError
from darkvec_stream.labels.addresses import ADDRESS_BITS, NetworkKey, format_network, parse_address
from darkvec_stream.labels.sources import LabelSource, LoadedSource, SourceStats, file_state, load_source

if TYPE_CHECKING:
    from darkvec_stream.labels.mirai import MiraiSource

logger = logging.getLogger(__name__)

MIRAI_SOURCE_NAME = "mirai-fingerprint"
BOOK_STATE_FILE = "label_book.json"


@dataclass(frozen=True, slots=True)
class LabelMatch:
    """The ground-truth label of one sender and where it came from."""

    label: str
    source: str
    network: str
    priority: int


@dataclass
class BookStats:
    """Counts over the merged sources.

    ``exact_conflicts`` counts networks listed by two sources with different
    labels; ``overlap_conflicts`` counts networks inside a shorter prefix that
    carries a different label. Both are resolved by the conflict rule.
    """

    networks: int = 0
    duplicates: int = 0
    exact_conflicts: int = 0
    overlap_conflicts: int = 0


class _Entry:
    __slots__ = ("label", "source", "priority", "order")

    def __init__(self, label: str, source: str, priority: int, order: int) -> None:
        self.label = label
        self.source = source
        self.priority = priority
        self.order = order


# One priority level: per IP version, (prefix_len, {prefix: entry}) longest first.
_Level = dict[int, list[tuple[int, dict[int, _Entry]]]]
# Per priority level and IP version: the coarse prefixes (/16 for IPv4, /32
# for IPv6) that hold any entry, so that most misses cost one set lookup.
# None when a very short prefix would need too many coarse prefixes.
_CoarseFilter = dict[int, set[int] | None]
_COARSE_BITS = {4: 16, 6: 32}
_MAX_COARSE_EXPANSION_BITS = 12


class LabelBook:
    """Ground-truth labels from several sources plus the Mirai fingerprint.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "censys_v4.txt").write_text("162.142.125.0/24\\n")
    >>> book = LabelBook([LabelSource("censys", folder / "censys_v4.txt")])
    >>> book.label_of("162.142.125.9"), book.label_of("10.0.0.1")
    ('censys', None)
    """

    def __init__(
        self,
        sources: Sequence[LabelSource],
        mirai: MiraiSource | None = None,
        mirai_priority: int = 10,
    ) -> None:
        names = [source.name for source in sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"label source names must be unique; repeated: {duplicates}")
        if MIRAI_SOURCE_NAME in names:
            raise ConfigError(f"label source name {MIRAI_SOURCE_NAME!r} is reserved for the Mirai fingerprint")
        self._mirai = mirai
        self._mirai_priority = mirai_priority
        self._loaded: list[LoadedSource] = [load_source(source) for source in sources]
        self._failed_state: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self._reload_failures: dict[str, int] = {}
        self._levels: list[tuple[int, _Level, _CoarseFilter]] = []
        self._stats = BookStats()
        self._rebuild()

    @classmethod
    def from_paths(cls, paths: Iterable[Path | str], mirai: MiraiSource | None = None) -> LabelBook:
        """Build a book from plain paths: auto format, equal priority, names from file stems."""
        sources = []
        used: set[str] = set()
        for path in map(Path, paths):
            name = path.name.split(".")[0] or str(path)
            while name in used:
                name = f"{name}_{len(used)}"
            used.add(name)
            sources.append(LabelSource(name=name, path=path))
        return cls(sources, mirai=mirai)

    # Lookups

    def match(self, sender: str) -> LabelMatch | None:
        """Return the winning label of ``sender`` with its source, or None."""
        parsed = parse_address(sender)
        mirai_done = self._mirai is None
        for priority, level, coarse in self._levels:
            if not mirai_done and self._mirai_priority > priority:
                mirai_done = True
                found = self._match_mirai(sender)
                if found is not None:
                    return found
            if parsed is None:
                continue
            version, value = parsed
            present = coarse.get(version)
            if present is not None and value >> (ADDRESS_BITS[version] - _COARSE_BITS[version]) not in present:
                continue
            found = _match_level(level, version, value, priority)
            if found is not None:
                return found
        if not mirai_done:
            return self._match_mirai(sender)
        return None

    def label_of(self, sender: str) -> str | None:
        """Return the ground-truth label of ``sender``, or None when it has none."""
        found = self.match(sender)
        return None if found is None else found.label

    def labelled(self, senders: Iterable[str]) -> dict[str, str]:
        """Return ``{sender: label}`` for the senders that carry a label."""
        result = {}
        for sender in senders:
            label = self.label_of(sender)
            if label is not None:
                result[sender] = label
        return result

    def _match_mirai(self, sender: str) -> LabelMatch | None:
        assert self._mirai is not None
        label = self._mirai.label_of(sender)
        if label is None:
            return None
        return LabelMatch(label, MIRAI_SOURCE_NAME, sender, self._mirai_priority)

    # Reload and versions

    def reload_if_changed(self) -> list[str]:
        """Reload the sources whose files changed; return the names whose content changed.

        A source that fails to reload keeps its previous version and logs an
        error once per failed file state (not at every call).
        """
        changed = []
        for position, loaded in enumerate(self._loaded):
            name = loaded.source.name
            try:
                state = file_state(loaded.source)
            except (DarkvecError, OSError) as error:
                self._log_failure(name, (), error)
                continue
            if state == loaded.file_state or state == self._failed_state.get(name):
                continue
            try:
                fresh = load_source(loaded.source)
            except (DarkvecError, OSError, ValueError) as error:
                self._log_failure(name, state, error)
                continue
            self._failed_state.pop(name, None)
            self._loaded[position] = fresh
            if fresh.sha256 != loaded.sha256:
                logger.info("label source %s reloaded: %d networks, sha256 %s", name, fresh.stats.distinct, fresh.sha256[:12])
                changed.append(name)
        if changed:
            self._rebuild()
        return changed

    def _log_failure(self, name: str, state: tuple[tuple[str, int, int], ...], error: Exception) -> None:
        if state and self._failed_state.get(name) == state:
            return
        self._failed_state[name] = state
        self._reload_failures[name] = self._reload_failures.get(name, 0) + 1
        logger.error("label source %s failed to reload, keeping the previous version: %s", name, error)

    def versions(self) -> dict[str, str]:
        """Return ``{source name: sha256 of its content}`` for checkpoints."""
        return {loaded.source.name: loaded.sha256 for loaded in self._loaded}

    def reload_failures(self) -> dict[str, int]:
        """Return how many reloads failed per source since start."""
        return dict(self._reload_failures)

    def source_stats(self) -> dict[str, SourceStats]:
        """Return the load counts of each source."""
        return {loaded.source.name: loaded.stats for loaded in self._loaded}

    @property
    def stats(self) -> BookStats:
        """Counts over the merged sources (networks, duplicates, conflicts)."""
        return self._stats

    @property
    def mirai(self) -> MiraiSource | None:
        """The Mirai fingerprint source, if any."""
        return self._mirai

    def organisations(self) -> dict[str, dict[str, str]]:
        """Return organisation details (type, reference) read from organisation tables."""
        merged: dict[str, dict[str, str]] = {}
        for loaded in self._loaded:
            for label, details in loaded.organisations.items():
                merged.setdefault(label, details)
        return merged

    def labels(self) -> set[str]:
        """Return every label some source assigns."""
        found = {label for loaded in self._loaded for label in loaded.networks.values()}
        if self._mirai is not None and len(self._mirai):
            found.add(self._mirai.label)
        return found

    def __len__(self) -> int:
        return self._stats.networks

    # Checkpoints

    def save(self, directory: Path) -> None:
        """Write the source versions and the Mirai state into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {"format_version": 1, "versions": self.versions(), "stats": asdict(self._stats)}
        (directory / BOOK_STATE_FILE).write_text(json.dumps(document, indent=2, sort_keys=True))
        if self._mirai is not None:
            self._mirai.save(directory / "mirai")

    def load(self, directory: Path) -> dict[str, tuple[str | None, str | None]]:
        """Restore the Mirai state; return sources whose version differs from the saved one.

        The result maps a source name to ``(saved sha256, current sha256)``; a
        missing side is None. Label files are not part of the checkpoint, so a
        difference means the ground truth changed since the save.
        """
        directory = Path(directory)
        try:
            document = json.loads((directory / BOOK_STATE_FILE).read_text())
            saved = dict(document["versions"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"label book state in {directory} is missing or corrupt: {error}") from error
        if self._mirai is not None:
            self._mirai.load(directory / "mirai")
        current = self.versions()
        differences = {}
        for name in sorted(set(saved) | set(current)):
            if saved.get(name) != current.get(name):
                differences[name] = (saved.get(name), current.get(name))
        if differences:
            logger.warning("label sources changed since the checkpoint: %s", sorted(differences))
        return differences

    # Merging

    def _rebuild(self) -> None:
        merged: dict[NetworkKey, _Entry] = {}
        stats = BookStats()
        for order, loaded in enumerate(self._loaded):
            priority = loaded.source.priority
            for key, label in loaded.networks.items():
                current = merged.get(key)
                if current is None:
                    merged[key] = _Entry(label, loaded.source.name, priority, order)
                    continue
                if current.label == label:
                    stats.duplicates += 1
                else:
                    stats.exact_conflicts += 1
                if priority > current.priority:
                    merged[key] = _Entry(label, loaded.source.name, priority, order)
        stats.networks = len(merged)
        stats.overlap_conflicts = _count_overlap_conflicts(merged)
        self._levels = _build_levels(merged)
        self._stats = stats


def _build_levels(merged: dict[NetworkKey, _Entry]) -> list[tuple[int, _Level, _CoarseFilter]]:
    grouped: dict[int, dict[int, dict[int, dict[int, _Entry]]]] = {}
    for key, entry in merged.items():
        by_version = grouped.setdefault(entry.priority, {})
        by_length = by_version.setdefault(key.version, {})
        by_length.setdefault(key.prefix_len, {})[key.prefix] = entry
    levels = []
    for priority in sorted(grouped, reverse=True):
        level: _Level = {}
        coarse: _CoarseFilter = {}
        for version, by_length in grouped[priority].items():
            level[version] = sorted(by_length.items(), key=lambda item: item[0], reverse=True)
            coarse[version] = _coarse_filter(version, by_length)
        levels.append((priority, level, coarse))
    return levels


def _coarse_filter(version: int, by_length: dict[int, dict[int, _Entry]]) -> set[int] | None:
    coarse_bits = _COARSE_BITS[version]
    present: set[int] = set()
    for prefix_len, table in by_length.items():
        if prefix_len >= coarse_bits:
            present.update(prefix >> (prefix_len - coarse_bits) for prefix in table)
            continue
        spread_bits = coarse_bits - prefix_len
        if spread_bits > _MAX_COARSE_EXPANSION_BITS:
            return None
        for prefix in table:
            first = prefix << spread_bits
            present.update(range(first, first + (1 << spread_bits)))
    return present


def _match_level(level: _Level, version: int, value: int, priority: int) -> LabelMatch | None:
    tables = level.get(version)
    if not tables:
        return None
    bits = ADDRESS_BITS[version]
    for prefix_len, table in tables:
        prefix = value >> (bits - prefix_len)
        entry = table.get(prefix)
        if entry is not None:
            network = format_network(NetworkKey(version, prefix_len, prefix))
            return LabelMatch(entry.label, entry.source, network, priority)
    return None


def _count_overlap_conflicts(merged: dict[NetworkKey, _Entry]) -> int:
    lengths: dict[int, list[int]] = {}
    for key in merged:
        lengths.setdefault(key.version, [])
    for version in lengths:
        lengths[version] = sorted({key.prefix_len for key in merged if key.version == version})
    conflicts = 0
    for key, entry in merged.items():
        for shorter in lengths[key.version]:
            if shorter >= key.prefix_len:
                break
            cover = merged.get(NetworkKey(key.version, shorter, key.prefix >> (key.prefix_len - shorter)))
            if cover is not None and cover.label != entry.label:
                conflicts += 1
                break
    return conflicts
