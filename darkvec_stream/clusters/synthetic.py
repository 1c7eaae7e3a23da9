"""Seeded sender vectors with a known nested group structure, for tuning and tests.

Groups are random directions on the unit sphere; a group may hold sub-groups
whose centres sit near the group centre, and members sit near their
sub-group centre. It imitates the geometry of a Word2Vec sender embedding
(one large botnet, scanner organisations with sub-groups, unrelated
background senders). It does not imitate traffic: that is the simulator's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkvec_stream.errors import ConfigError
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

BACKGROUND = "background"


@dataclass(frozen=True, slots=True)
class NestedBlobs:
    """Sender keys, unit vectors and the true group and sub-group of each sender.

    ``subgroups`` is the finest truth (``group/sub``); background senders
    have the group ``background`` and each is its own sub-group.
    """

    keys: tuple[str, ...]
    vectors: np.ndarray
    groups: tuple[str, ...]
    subgroups: tuple[str, ...]


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Return the rows of ``matrix`` scaled to unit L2 norm, as float32."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


def _perturb(centre: np.ndarray, spread: float, count: int, rng: np.random.Generator) -> np.ndarray:
    # Isotropic Gaussian noise of per-dimension scale spread/sqrt(dim) keeps the
    # expected angle to the centre independent of the dimension.
    dim = centre.shape[0]
    noise = rng.normal(0.0, spread / np.sqrt(dim), size=(count, dim))
    return unit_rows(centre[None, :] + noise)


def nested_blobs(
    group_sizes: tuple[tuple[int, ...], ...] = (
        (1500,),
        (120, 90, 60),
        (80, 40),
        (60,),
        (50, 50),
        (40,),
        (30, 30, 30),
        (25,),
        (20,),
        (20,),
    ),
    background: int = 300,
    dim: int = 50,
    subgroup_spread: float = 0.7,
    member_spread: float = 0.45,
    seed: int = 0,
) -> NestedBlobs:
    """Draw sender vectors for the given groups and their sub-group sizes.

    ``group_sizes[g]`` lists the member counts of the sub-groups of group
    ``g`` (one entry: no sub-structure). ``subgroup_spread`` and
    ``member_spread`` are the noise norms relative to a unit centre; with
    dimension 50 the defaults give a cosine similarity of about 0.8 between
    members of one sub-group and about 0.55 across sub-groups of one group.
    """
    if dim < 2:
        raise ConfigError(f"dim must be at least 2, got {dim}")
    if any(size <= 0 for sizes in group_sizes for size in sizes) or background < 0:
        raise ConfigError(f"group sizes must be positive and background >= 0, got {group_sizes}, {background}")
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    groups: list[str] = []
    subgroups: list[str] = []
    for group_index, sizes in enumerate(group_sizes):
        group_centre = unit_rows(rng.normal(size=(1, dim)))[0]
        for sub_index, size in enumerate(sizes):
            sub_centre = group_centre if len(sizes) == 1 else _perturb(group_centre, subgroup_spread, 1, rng)[0]
            parts.append(_perturb(sub_centre, member_spread, size, rng))
            groups.extend([f"g{group_index}"] * size)
            subgroups.extend([f"g{group_index}/s{sub_index}"] * size)
    if background:
        parts.append(unit_rows(rng.normal(size=(background, dim))))
        groups.extend([BACKGROUND] * background)
        subgroups.extend(f"{BACKGROUND}/{i}" for i in range(background))
    vectors = np.concatenate(parts).astype(np.float32)
    keys = tuple(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(len(vectors)))
    return NestedBlobs(keys=keys, vectors=vectors, groups=tuple(groups), subgroups=tuple(subgroups))


@dataclass(frozen=True, slots=True)
class StreamGroup:
    """One coordinated group of a synthetic stream.

    Members are active from ``onset_window`` on and hit ``ports``; from
    ``port_change_window`` on they hit ``new_ports`` instead. A share
    ``labelled_share`` of members carry the label ``name``.
    """

    name: str
    size: int
    ports: tuple[int, ...]
    onset_window: int = 0
    port_change_window: int | None = None
    new_ports: tuple[int, ...] = ()
    labelled_share: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamWindow:
    """One window of a synthetic stream: the window, the live senders, their vectors, labels and truth."""

    window: ClosedWindow
    keys: tuple[str, ...]
    vectors: np.ndarray
    labels: dict[str, str]
    truth: dict[str, str]


def _group_members(group_index: int, size: int) -> list[str]:
    # 198.18.0.0/15 is reserved for benchmarks (RFC 2544): never a real sender.
    return [f"198.{18 + (group_index * 4 + i // 256) // 256}.{(group_index * 4 + i // 256) % 256}.{i % 256}"
            for i in range(size)]


def synthetic_stream(
    groups: tuple[StreamGroup, ...],
    windows: int = 48,
    dim: int = 50,
    member_spread: float = 0.5,
    jitter: float = 0.1,
    background: int = 50,
    window_s: int = 3600,
    seed: int = 0,
) -> list[StreamWindow]:
    """Build a seeded stream of closed windows with vectors for coordinated groups and background senders.

    Each member keeps a base vector near its group centre; every window adds
    a fresh ``jitter`` (as incremental training moves vectors a little).
    Background senders are new random senders each window on random ports.
    """
    if len(groups) > 200 or not 0 <= background <= 256:
        raise ConfigError(f"the synthetic address plan fits 200 groups and 256 background senders per window, "
                          f"got {len(groups)} and {background}")
    rng = np.random.default_rng(seed)
    bases: list[np.ndarray] = []
    members: list[list[str]] = []
    labelled: list[set[str]] = []
    for index, group in enumerate(groups):
        centre = unit_rows(rng.normal(size=(1, dim)))[0]
        bases.append(_perturb(centre, member_spread, group.size, rng))
        members.append(_group_members(index, group.size))
        labelled.append(set(members[-1][: int(round(group.labelled_share * group.size))]))
    stream = []
    for window_index in range(windows):
        window_rng = np.random.default_rng([seed, window_index])
        stream.append(_stream_window(groups, bases, members, labelled, window_index, dim, jitter,
                                     background, window_s, window_rng))
    return stream


def _stream_window(
    groups: tuple[StreamGroup, ...], bases: list[np.ndarray], members: list[list[str]], labelled: list[set[str]],
    window_index: int, dim: int, jitter: float, background: int, window_s: int, rng: np.random.Generator,
) -> StreamWindow:
    start_ns = window_index * window_s * 1_000_000_000
    keys: list[str] = []
    parts: list[np.ndarray] = []
    activity: dict[str, SenderActivity] = {}
    labels: dict[str, str] = {}
    truth: dict[str, str] = {}
    for index, group in enumerate(groups):
        if window_index < group.onset_window:
            continue
        changed = group.port_change_window is not None and window_index >= group.port_change_window
        ports = group.new_ports if changed else group.ports
        for row, sender in enumerate(members[index]):
            activity[sender] = _activity(ports, start_ns, window_s, rng)
            truth[sender] = group.name
            if sender in labelled[index]:
                labels[sender] = group.name
        keys.extend(members[index])
        parts.append(bases[index])
    for i in range(background):
        # 100.64.0.0/10 (shared address space): one /24 per window, fresh senders each window.
        sender = f"100.{64 + (window_index // 256) % 64}.{window_index % 256}.{i}"
        keys.append(sender)
        activity[sender] = _activity(tuple(int(p) for p in rng.integers(1, 65536, size=2)), start_ns, window_s, rng)
        truth[sender] = BACKGROUND
    if background:
        parts.append(unit_rows(rng.normal(size=(background, dim))))
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    vectors = unit_rows(vectors + rng.normal(0.0, jitter / np.sqrt(dim), size=vectors.shape))
    window = ClosedWindow(index=window_index, start_ns=start_ns, end_ns=start_ns + window_s * 1_000_000_000,
                          sentences=(), activity=activity, records=sum(a.packets for a in activity.values()),
                          senders_seen=len(activity), late_records=0)
    return StreamWindow(window, tuple(keys), vectors, labels, truth)


def _activity(ports: tuple[int, ...], start_ns: int, window_s: int, rng: np.random.Generator) -> SenderActivity:
    packets = int(rng.poisson(6)) + 1
    hits = rng.choice(np.asarray(ports), size=packets)
    first_ns = start_ns + int(rng.integers(0, window_s // 2)) * 1_000_000_000
    dst_ports: dict[int, int] = {}
    for port in hits.tolist():
        dst_ports[int(port)] = dst_ports.get(int(port), 0) + 1
    return SenderActivity(packets=packets, first_ns=first_ns, last_ns=first_ns + 1_000_000_000,
                          dst_ports=dst_ports, services={f"tcp/{port}" for port in dst_ports})
