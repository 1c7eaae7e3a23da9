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
