"""Give clusters stable global ids across clustering runs and name what happened to each.

Clusters of consecutive runs are linked by member overlap (Jaccard index or
overlap coefficient), ids pass along the strongest links, and each run
yields transitions (emerged, survived, grew, shrank, split, merged,
absorbed, disappeared, re-emerged) and churn counts. It sees only member
sets: no vectors, traffic or labels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping

from darkvec_stream.errors import ConfigError, StateError

logger = logging.getLogger(__name__)

EMERGED = "emerged"
SURVIVED = "survived"
GREW = "grew"
SHRANK = "shrank"
SPLIT = "split"
MERGED = "merged"
ABSORBED = "absorbed"
DISAPPEARED = "disappeared"
REEMERGED = "reemerged"
TRANSITIONS = (EMERGED, SURVIVED, GREW, SHRANK, SPLIT, MERGED, ABSORBED, DISAPPEARED, REEMERGED)

STATE_FILE = "tracker.json"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Transition:
    """One thing that happened to one tracked cluster in one run.

    ``related`` holds the other ids involved: the parent of a split child,
    the children of a split parent, the clusters a merged cluster absorbed,
    or the cluster that absorbed this one. ``jaccard`` is the member overlap
    behind the decision, ``None`` for emerged and disappeared clusters.
    ``absent_windows`` is set for re-emerged clusters: the windows without them.
    """

    kind: str
    cluster_id: str
    window_index: int
    size_before: int
    size_after: int
    related: tuple[str, ...] = ()
    jaccard: float | None = None
    absent_windows: int | None = None


@dataclass(frozen=True, slots=True)
class Churn:
    """Counts of one tracking run, exported as metrics.

    ``births`` counts emerged clusters and split children, ``deaths`` counts
    disappeared and absorbed clusters, ``survivals`` counts clusters that kept
    their id (merged ones included).
    """

    window_index: int
    active: int
    births: int
    deaths: int
    splits: int
    merges: int
    survivals: int
    reemergences: int

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """The outcome of one run: global ids of the new clusters and the transitions.

    ``ids`` maps each cluster label of the run to its global id, ``status``
    maps each global id active after the run to its transition kind.
    """

    window_index: int
    ids: Mapping[int, str]
    members: Mapping[str, frozenset[str]]
    status: Mapping[str, str]
    transitions: tuple[Transition, ...]
    churn: Churn

    def of_kind(self, kind: str) -> list[Transition]:
        """Return the transitions of one kind, in id order."""
        return [transition for transition in self.transitions if transition.kind == kind]


@dataclass(slots=True)
class _Tracked:
    members: frozenset[str]
    first_window: int
    last_window: int


@dataclass(frozen=True, slots=True)
class _Link:
    previous_id: str
    label: int
    jaccard: float
    overlap: float


def overlap_scores(left: Collection[str], right: Collection[str], common: int) -> tuple[float, float]:
    """Return the Jaccard index and the overlap coefficient of two sets sharing ``common`` members."""
    union = len(left) + len(right) - common
    smaller = min(len(left), len(right))
    return (common / union if union else 0.0), (common / smaller if smaller else 0.0)


class ClusterTracker:
    """Assign stable global ids (``C000001``...) to the clusters of successive runs.

    A new cluster and a tracked one are linked when their Jaccard index is at
    least ``min_jaccard`` or their overlap coefficient (shared members over
    the smaller size) is at least ``min_overlap``. Links are taken by
    decreasing Jaccard: a link between a free tracked id and a free new
    cluster passes the id on. A new cluster left without an id but linked is a
    split child; a tracked cluster left without a new cluster but linked was
    absorbed. A cluster with no link disappeared and stays matchable for
    ``reemerge_windows`` windows. Kept ids grew or shrank when the size
    changed by ``growth_ratio`` or more, else they survived.

    >>> tracker = ClusterTracker()
    >>> first = tracker.update({0: {"a", "b", "c"}}, window_index=0)
    >>> second = tracker.update({0: {"a", "b", "c", "d"}}, window_index=1)
    >>> first.ids[0] == second.ids[0], second.status[second.ids[0]]
    (True, 'survived')
    """

    def __init__(
        self,
        min_jaccard: float = 0.3,
        min_overlap: float = 0.8,
        growth_ratio: float = 1.5,
        reemerge_windows: int = 168,
        id_prefix: str = "C",
    ) -> None:
        for name, value in (("min_jaccard", min_jaccard), ("min_overlap", min_overlap)):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"tracking {name} must be in (0, 1], got {value}")
        if growth_ratio <= 1.0:
            raise ConfigError(f"tracking growth_ratio must be above 1, got {growth_ratio}")
        if reemerge_windows < 0:
            raise ConfigError(f"tracking reemerge_windows must be >= 0, got {reemerge_windows}")
        self.min_jaccard = min_jaccard
        self.min_overlap = min_overlap
        self.growth_ratio = growth_ratio
        self.reemerge_windows = reemerge_windows
        self.id_prefix = id_prefix
        self._next_number = 1
        self._last_window: int | None = None
        self._active: dict[str, _Tracked] = {}
        self._dormant: dict[str, _Tracked] = {}

    @property
    def active(self) -> Mapping[str, frozenset[str]]:
        return {cluster_id: tracked.members for cluster_id, tracked in self._active.items()}

    @property
    def dormant_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._dormant))

    def known_ids(self) -> set[str]:
        """Return the ids still active or matchable for re-emergence."""
        return set(self._active) | set(self._dormant)

    def first_window(self, cluster_id: str) -> int | None:
        """Return the window in which ``cluster_id`` was first seen, or None if it is forgotten."""
        tracked = self._active.get(cluster_id) or self._dormant.get(cluster_id)
        return tracked.first_window if tracked else None

    def update(self, clusters: Mapping[int, Collection[str]], window_index: int) -> TrackingResult:
        """Match the clusters of a new run (label to members) against the tracked ones.

        ``window_index`` must increase from run to run; raises ``StateError``
        otherwise, because a replayed run would hand out ids twice.
        """
        if self._last_window is not None and window_index <= self._last_window:
            raise StateError(
                f"tracking run for window {window_index} is not after the last run (window {self._last_window}): "
                "restore the checkpoint taken before that window instead of replaying into live state"
            )
        new_members = {label: frozenset(members) for label, members in clusters.items() if members}
        self._expire_dormant(window_index)

        # 1. Link the new clusters to the active tracked ones and pass ids along the strongest links.
        links = self._links(self._active, new_members)
        ids, continued = self._assign(links)

        # 2. Classify every new cluster and every tracked cluster from its links.
        transitions: list[Transition] = []
        status: dict[str, str] = {}
        absorbed = self._absorptions(links, continued)
        self._classify_continuations(continued, absorbed, new_members, window_index, transitions, status)
        split_parents = self._classify_split_children(links, ids, new_members, window_index, transitions, status)
        ended = self._classify_ended(ids, continued, absorbed, new_members, window_index, transitions, split_parents)

        # 3. Unlinked new clusters either re-emerge under an old id or emerge under a new one.
        unlinked = {label: members for label, members in new_members.items() if label not in ids}
        self._reemerge_or_emerge(unlinked, ids, window_index, transitions, status)

        # 4. Commit: ended clusters go dormant, the new run becomes the active set.
        self._commit(new_members, ids, ended, window_index)
        transitions.sort(key=lambda transition: (transition.cluster_id, transition.kind))
        churn = self._churn(window_index, transitions, len(new_members), split_parents)
        logger.debug("tracked window %s: %s", window_index, churn)
        members_by_id = {ids[label]: members for label, members in new_members.items()}
        return TrackingResult(window_index, dict(ids), members_by_id, status, tuple(transitions), churn)

    def _expire_dormant(self, window_index: int) -> None:
        expired = [cid for cid, tracked in self._dormant.items()
                   if window_index - tracked.last_window > self.reemerge_windows]
        for cluster_id in expired:
            del self._dormant[cluster_id]

    def _links(self, tracked: Mapping[str, _Tracked], new_members: Mapping[int, frozenset[str]]) -> list[_Link]:
        # Dormant clusters from different runs can share senders, so a sender
        # may have several owners; counting only one would make the overlap
        # depend on the order of ``tracked``, which a restore changes.
        owners: dict[str, list[str]] = {}
        for cluster_id, entry in tracked.items():
            for sender in entry.members:
                owners.setdefault(sender, []).append(cluster_id)
        common: dict[tuple[str, int], int] = {}
        for label, members in new_members.items():
            for sender in members:
                for cluster_id in owners.get(sender, ()):
                    common[(cluster_id, label)] = common.get((cluster_id, label), 0) + 1
        links = []
        for (cluster_id, label), shared in common.items():
            jaccard, overlap = overlap_scores(tracked[cluster_id].members, new_members[label], shared)
            if jaccard >= self.min_jaccard or overlap >= self.min_overlap:
                links.append(_Link(cluster_id, label, jaccard, overlap))
        # Strongest first; ids and labels break ties so runs repeat exactly.
        links.sort(key=lambda link: (-link.jaccard, -link.overlap, link.previous_id, link.label))
        return links

    @staticmethod
    def _assign(links: list[_Link]) -> tuple[dict[int, str], dict[str, _Link]]:
        ids: dict[int, str] = {}
        continued: dict[str, _Link] = {}
        for link in links:
            if link.label not in ids and link.previous_id not in continued:
                ids[link.label] = link.previous_id
                continued[link.previous_id] = link
        return ids, continued

    @staticmethod
    def _absorptions(links: list[_Link], continued: Mapping[str, _Link]) -> dict[str, _Link]:
        """Map each tracked id that lost its id to the link of the cluster that absorbed it."""
        absorbed: dict[str, _Link] = {}
        for link in links:
            if link.previous_id in continued:
                continue
            best = absorbed.get(link.previous_id)
            if best is None or (link.overlap, link.jaccard, -link.label) > (best.overlap, best.jaccard, -best.label):
                absorbed[link.previous_id] = link
        return absorbed

    def _classify_continuations(
        self, continued: Mapping[str, _Link], absorbed: Mapping[str, _Link], new_members: Mapping[int, frozenset[str]],
        window_index: int, transitions: list[Transition], status: dict[str, str],
    ) -> None:
        for cluster_id, link in continued.items():
            before = len(self._active[cluster_id].members)
            after = len(new_members[link.label])
            swallowed = sorted(other for other, into in absorbed.items() if into.label == link.label)
            if swallowed:
                kind = MERGED
            elif after >= before * self.growth_ratio:
                kind = GREW
            elif after * self.growth_ratio <= before:
                kind = SHRANK
            else:
                kind = SURVIVED
            status[cluster_id] = kind
            transitions.append(Transition(kind, cluster_id, window_index, before, after, tuple(swallowed), link.jaccard))

    def _classify_split_children(
        self, links: list[_Link], ids: dict[int, str], new_members: Mapping[int, frozenset[str]],
        window_index: int, transitions: list[Transition], status: dict[str, str],
    ) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for link in links:
            if link.label in ids:
                continue
            # Links are sorted strongest first, so this is the child's main parent.
            child_id = self._new_id()
            ids[link.label] = child_id
            parent = self._active[link.previous_id]
            status[child_id] = SPLIT
            transitions.append(Transition(SPLIT, child_id, window_index, len(parent.members),
                                          len(new_members[link.label]), (link.previous_id,), link.jaccard))
            children.setdefault(link.previous_id, []).append(child_id)
        return children

    def _classify_ended(
        self, ids: Mapping[int, str], continued: Mapping[str, _Link], absorbed: Mapping[str, _Link],
        new_members: Mapping[int, frozenset[str]], window_index: int, transitions: list[Transition],
        split_parents: Mapping[str, list[str]],
    ) -> list[str]:
        ended = []
        for cluster_id, tracked in sorted(self._active.items()):
            size = len(tracked.members)
            link = continued.get(cluster_id)
            if cluster_id in split_parents:
                size_after = len(new_members[link.label]) if link else 0
                transitions.append(Transition(SPLIT, cluster_id, window_index, size, size_after,
                                              tuple(sorted(split_parents[cluster_id]))))
            if link is not None:
                continue
            ended.append(cluster_id)
            into = absorbed.get(cluster_id)
            if into is not None:
                transitions.append(Transition(ABSORBED, cluster_id, window_index, size, 0,
                                              (ids[into.label],), into.jaccard))
            elif cluster_id not in split_parents:
                transitions.append(Transition(DISAPPEARED, cluster_id, window_index, size, 0))
        return ended

    def _reemerge_or_emerge(
        self, unlinked: Mapping[int, frozenset[str]], ids: dict[int, str], window_index: int,
        transitions: list[Transition], status: dict[str, str],
    ) -> None:
        links = self._links(self._dormant, unlinked)
        revived, _ = self._assign(links)
        for label, members in sorted(unlinked.items()):
            if label in revived:
                cluster_id = revived[label]
                link = next(link for link in links if link.label == label and link.previous_id == cluster_id)
                dormant = self._dormant[cluster_id]
                transitions.append(Transition(REEMERGED, cluster_id, window_index, len(dormant.members),
                                              len(members), (), link.jaccard,
                                              window_index - dormant.last_window - 1))
                status[cluster_id] = REEMERGED
            else:
                cluster_id = self._new_id()
                transitions.append(Transition(EMERGED, cluster_id, window_index, 0, len(members)))
                status[cluster_id] = EMERGED
            ids[label] = cluster_id

    def _commit(
        self, new_members: Mapping[int, frozenset[str]], ids: Mapping[int, str], ended: list[str], window_index: int
    ) -> None:
        for cluster_id in ended:
            tracked = self._active[cluster_id]
            self._dormant[cluster_id] = _Tracked(tracked.members, tracked.first_window, window_index - 1)
        active: dict[str, _Tracked] = {}
        for label, members in new_members.items():
            cluster_id = ids[label]
            previous = self._active.get(cluster_id) or self._dormant.pop(cluster_id, None)
            first = previous.first_window if previous else window_index
            active[cluster_id] = _Tracked(members, first, window_index)
        self._active = active
        self._last_window = window_index

    def _new_id(self) -> str:
        cluster_id = f"{self.id_prefix}{self._next_number:06d}"
        self._next_number += 1
        return cluster_id

    @staticmethod
    def _churn(
        window_index: int, transitions: list[Transition], active: int, split_parents: Mapping[str, list[str]]
    ) -> Churn:
        kinds = [transition.kind for transition in transitions]
        children = sum(len(child_ids) for child_ids in split_parents.values())
        return Churn(
            window_index=window_index,
            active=active,
            births=kinds.count(EMERGED) + children,
            deaths=kinds.count(DISAPPEARED) + kinds.count(ABSORBED),
            splits=len(split_parents),
            merges=kinds.count(MERGED),
            survivals=sum(kinds.count(kind) for kind in (SURVIVED, GREW, SHRANK, MERGED)),
            reemergences=kinds.count(REEMERGED),
        )

    def save(self, directory: Path) -> None:
        """Write the tracker state as JSON into ``directory`` (created if missing)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "next_number": self._next_number,
            "last_window": self._last_window,
            "active": _encode_tracked(self._active),
            "dormant": _encode_tracked(self._dormant),
        }
        (directory / STATE_FILE).write_text(json.dumps(state, sort_keys=True), encoding="utf-8")

    def load(self, directory: Path) -> None:
        """Replace this tracker's state with the one saved in ``directory``.

        Raises ``StateError`` when the file is missing, unreadable or from another version.
        """
        path = Path(directory) / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StateError(f"cannot read tracker state {path}: {error}") from error
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise StateError(f"tracker state {path} is not version {STATE_VERSION}: restore a matching checkpoint")
        try:
            self._next_number = int(state["next_number"])
            self._last_window = None if state["last_window"] is None else int(state["last_window"])
            self._active = _decode_tracked(state["active"])
            self._dormant = _decode_tracked(state["dormant"])
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"tracker state {path} is malformed: {error!r}") from error


def _encode_tracked(entries: Mapping[str, _Tracked]) -> dict[str, Any]:
    return {
        cluster_id: {"members": sorted(tracked.members), "first_window": tracked.first_window,
                     "last_window": tracked.last_window}
        for cluster_id, tracked in sorted(entries.items())
    }


def _decode_tracked(entries: Mapping[str, Any]) -> dict[str, _Tracked]:
    return {
        str(cluster_id): _Tracked(frozenset(str(member) for member in entry["members"]),
                                  int(entry["first_window"]), int(entry["last_window"]))
        for cluster_id, entry in entries.items()
    }
