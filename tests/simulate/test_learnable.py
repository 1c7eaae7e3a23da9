"""The simulated traffic carries the structure DarkVec learns: a direct gensim check."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

import numpy as np
import pytest
from gensim.models import Word2Vec

from darkvec_stream.simulate import Simulation, SimulationConfig
from darkvec_stream.simulate.truth import sender_rows

logger = logging.getLogger(__name__)

HOUR_NS = 3600 * 10**9
MIN_PACKETS = 10
# Sentences longer than this are truncated by gensim, so they are split.
MAX_SENTENCE = 10_000


def _hourly_port_sentences(run: Simulation) -> list[list[str]]:
    """Per hour and destination port, the senders in time order without back-to-back repeats."""
    sentences = []
    for batch in run.batches():
        hour = batch.ts_ns // HOUR_NS
        key = hour * 70_000 + batch.dst_port + 1
        order = np.lexsort((batch.ts_ns, key))
        sources, keys = batch.src[order], key[order]
        for group in np.split(np.arange(order.size), np.flatnonzero(np.diff(keys)) + 1):
            senders = sources[group]
            senders = senders[np.concatenate([[True], senders[1:] != senders[:-1]])]
            tokens = [str(value) for value in senders.tolist()]
            sentences += [tokens[i:i + MAX_SENTENCE] for i in range(0, len(tokens), MAX_SENTENCE)]
    return sentences


@pytest.mark.slow
def test_scanner_neighbours_same_organisation() -> None:
    run = Simulation(SimulationConfig(days=2, scale=0.02, seed=3))
    sentences = _hourly_port_sentences(run)
    rows = sender_rows(run)
    packets = {str(row[0]): row[6] for row in rows}
    kept = [[token for token in sentence if packets[token] >= MIN_PACKETS] for sentence in sentences]
    model = Word2Vec(kept, vector_size=50, window=25, sg=1, negative=5, sample=0, min_count=1,
                     epochs=10, workers=1, seed=1)

    organisation = {str(row[0]): row[1] for row in rows if row[3] == "scanner" and row[6] >= MIN_PACKETS}
    keys = [key for key in organisation if key in model.wv.key_to_index]
    vectors = np.stack([model.wv[key] for key in keys])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)

    # Leave-one-out 5-NN majority vote among the labelled scanner senders.
    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row, key in enumerate(keys):
        neighbours = np.argsort(-similarity[row])[:5]
        vote = Counter(organisation[keys[n]] for n in neighbours).most_common(1)[0][0]
        total[organisation[key]] += 1
        correct[organisation[key]] += vote == organisation[key]
    accuracy = sum(correct.values()) / sum(total.values())
    per_group = {group: round(correct[group] / total[group], 2) for group in total}
    logger.info("5-NN leave-one-out accuracy %.3f over %s scanners: %s", accuracy, len(keys), per_group)
    print(f"5-NN accuracy {accuracy:.3f} over {len(keys)} scanner senders; per group {per_group}")
    assert len(total) >= 8
    assert accuracy >= 0.9
