"""Synthetic sender embeddings with exact truth, for calibrating and testing labelling.

Each class is a Gaussian cloud around its own direction on the unit sphere,
as coordinated senders are in a Word2Vec space. Only part of each class is
in the ground truth; unlabelled coordinated groups and isolated noise senders
are added around them. This is a stand-in for embeddings of simulated
traffic: similarity thresholds calibrated on it must be re-checked with
``darkvec-stream evaluate`` on a real model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkvec_stream.errors import ConfigError


@dataclass(frozen=True)
class SyntheticEmbedding:
    """Sender vectors with their true class and the observed ground truth.

    ``true_class`` is the hidden truth: a labelled class name, ``unknown_N``
    for an unlabelled coordinated group, or None for a noise sender.
    ``ground_truth`` is what a label book would know: a share of the
    labelled classes' members.
    """

    senders: list[str]
    vectors: np.ndarray
    true_class: list[str | None]
    ground_truth: dict[str, str]


def sender_address(index: int) -> str:
    """Return a distinct IPv4 address in 10.0.0.0/8 for a sender number."""
    if not 0 <= index < 1 << 24:
        raise ConfigError(f"sender number {index} does not fit in 10.0.0.0/8")
    return f"10.{index >> 16}.{(index >> 8) & 255}.{index & 255}"


def make_embedding(
    classes: int = 9,
    largest_class: int = 300,
    smallest_class: int = 20,
    dimensions: int = 50,
    spread: float = 0.15,
    overlap: float = 0.0,
    labelled_share: float = 1.0,
    unknown_groups: int = 0,
    unknown_group_size: int = 50,
    noise_senders: int = 0,
    seed: int = 0,
) -> SyntheticEmbedding:
    """Generate clusters of senders; see ``SyntheticEmbedding`` for the fields.

    ``spread`` is the per-dimension standard deviation around a class
    direction (each class draws its own from 0.7 to 1.3 times it, so some
    classes are weaker). ``overlap`` from 0 to 1 pulls all class directions
    towards one shared direction: at 0 they are near-orthogonal, near 1 they
    coincide. Class sizes fall off from ``largest_class`` to ``smallest_class``.
    """
    if not 0.0 <= overlap <= 1.0:
        raise ConfigError(f"overlap {overlap} is invalid; use a share between 0 and 1")
    if not 0.0 <= labelled_share <= 1.0:
        raise ConfigError(f"labelled_share {labelled_share} is invalid; use a share between 0 and 1")
    rng = np.random.default_rng(seed)
    shared = _unit(rng.standard_normal(dimensions))
    sizes = np.linspace(largest_class, smallest_class, classes).round().astype(int) if classes else []
    blocks: list[np.ndarray] = []
    truth: list[str | None] = []
    labelled: list[bool] = []
    for number, size in enumerate(sizes):
        direction = _unit(overlap * shared + (1.0 - overlap) * _unit(rng.standard_normal(dimensions)))
        blocks.append(_cloud(rng, direction, int(size), spread * rng.uniform(0.7, 1.3)))
        truth.extend([f"class{number:02d}"] * int(size))
        labelled.extend((rng.random(int(size)) < labelled_share).tolist())
    for group in range(unknown_groups):
        direction = _unit(overlap * shared + (1.0 - overlap) * _unit(rng.standard_normal(dimensions)))
        blocks.append(_cloud(rng, direction, unknown_group_size, spread * rng.uniform(0.7, 1.3)))
        truth.extend([f"unknown_{group}"] * unknown_group_size)
        labelled.extend([False] * unknown_group_size)
    if noise_senders:
        blocks.append(rng.standard_normal((noise_senders, dimensions)))
        truth.extend([None] * noise_senders)
        labelled.extend([False] * noise_senders)
    vectors = np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, dimensions), dtype=np.float32)
    senders = [sender_address(index) for index in range(len(truth))]
    ground_truth = {
        sender: label
        for sender, label, known in zip(senders, truth, labelled)
        if known and label is not None and label.startswith("class")
    }
    return SyntheticEmbedding(senders, vectors, truth, ground_truth)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _cloud(rng: np.random.Generator, direction: np.ndarray, size: int, spread: float) -> np.ndarray:
    return direction + spread * rng.standard_normal((size, direction.shape[0]))
