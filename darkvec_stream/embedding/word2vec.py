"""A gensim Word2Vec subclass whose per-window vocabulary update is vectorised.

gensim 4.4 rebuilds the negative-sampling table and the word counts of the
whole vocabulary in pure-Python loops on every ``build_vocab(update=True)``,
so an hourly update at 500 k senders spends seconds outside training. This
module replaces those loops with numpy code that produces bit-identical
state, and builds a model directly from saved arrays (used by load and by
compaction). It does not decide what to train or when: that is
``SenderEmbedding``'s job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
from gensim.models import Word2Vec

logger = logging.getLogger(__name__)

# gensim's default domain for the cumulative table: the sampler draws an
# integer below cum_table[-1] and bisects.
CUM_TABLE_DOMAIN = 2**31 - 1

# gensim stores sampling thresholds as uint32 fractions of this value.
_SAMPLE_INT_SCALE = 2**32 - 1


def cumulative_table(counts: np.ndarray, ns_exponent: float, domain: int = CUM_TABLE_DOMAIN) -> np.ndarray:
    """Build gensim's negative-sampling table from per-row word counts.

    The result is bit-identical to ``Word2Vec.make_cum_table`` in gensim 4.4
    because every step is the same IEEE operation in the same order. Those
    steps are the power per count, a sequential float64 running sum
    (``np.cumsum`` is sequential, not pairwise), the division by the sum and
    round-half-even.
    """
    if len(counts) == 0:
        return np.zeros(0, dtype=np.uint32)
    powered = np.asarray(counts, dtype=np.int64).astype(np.float64) ** float(ns_exponent)
    cumulative = np.cumsum(powered)
    total = cumulative[-1]
    return np.rint(cumulative / total * domain).astype(np.uint32)


def _sample_ints(batch_counts: np.ndarray, sample: float, retain_total: int) -> np.ndarray:
    """Compute gensim's per-word down-sampling thresholds, vectorised."""
    if not sample:
        threshold = float(retain_total)
    elif sample < 1.0:
        threshold = sample * retain_total
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    values = batch_counts.astype(np.float64)
    probability = (np.sqrt(values / threshold) + 1) * (threshold / values)
    probability = np.minimum(probability, 1.0)
    return (probability * _SAMPLE_INT_SCALE).astype(np.uint32)


class StreamingWord2Vec(Word2Vec):
    """Word2Vec with numpy versions of the whole-vocabulary update loops.

    Only negative sampling without a null word is supported, which is what
    the embedding stage uses. A first ``build_vocab`` goes through gensim's
    own code; updates (``update=True``) go through ``_prepare_vocab_update``.
    """

    def make_cum_table(self, domain: int = CUM_TABLE_DOMAIN) -> None:
        counts = self.wv.expandos.get("count", np.zeros(0, dtype=np.int64))
        self.cum_table = cumulative_table(counts[: len(self.wv.index_to_key)], self.ns_exponent, domain)

    def prepare_vocab(  # type: ignore[override]
        self,
        update: bool = False,
        keep_raw_vocab: bool = False,
        trim_rule: Any = None,
        min_count: int | None = None,
        sample: float | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        if not update or dry_run or trim_rule is not None or self.max_final_vocab is not None:
            return super().prepare_vocab(  # type: ignore[no-any-return]
                update=update, keep_raw_vocab=keep_raw_vocab, trim_rule=trim_rule,
                min_count=min_count, sample=sample, dry_run=dry_run,
            )
        return self._prepare_vocab_update(keep_raw_vocab, min_count or self.min_count, sample or self.sample)

    def _prepare_vocab_update(self, keep_raw_vocab: bool, min_count: int, sample: float) -> dict[str, int]:
        """Apply ``self.raw_vocab`` to the vocabulary as gensim's update does.

        The semantics are those of gensim 4.4. Every known word gains its
        batch count, even below ``min_count``. An unknown word joins only if
        its batch count reaches ``min_count``, and it joins at the end.
        """
        if self.hs or self.null_word:
            raise NotImplementedError("the vectorised vocabulary update supports negative sampling only")
        self.effective_min_count = min_count
        wv = self.wv
        raw_vocab: Mapping[str, int] = self.raw_vocab
        words = list(raw_vocab)
        batch_counts = np.fromiter(raw_vocab.values(), dtype=np.int64, count=len(words))
        rows = np.fromiter((wv.key_to_index.get(word, -1) for word in words), dtype=np.int64, count=len(words))
        kept = batch_counts >= self.effective_min_count
        known = rows >= 0

        # 1. Append new words, in the order of raw_vocab, as gensim does.
        new_positions = np.flatnonzero(kept & ~known)
        first_new_row = len(wv.index_to_key)
        for offset, position in enumerate(new_positions.tolist()):
            word = words[position]
            wv.key_to_index[word] = first_new_row + offset
            wv.index_to_key.append(word)
        rows[new_positions] = np.arange(first_new_row, first_new_row + len(new_positions))

        # 2. Grow the per-row attributes, then add the batch counts.
        wv.allocate_vecattrs(attrs=["count", "sample_int"], types=[int, np.uint32])
        counted = np.flatnonzero(rows >= 0)
        np.add.at(wv.expandos["count"], rows[counted], batch_counts[counted])

        # 3. Sampling thresholds of retained words, from their batch counts.
        retained = np.flatnonzero(kept)
        retain_total = int(batch_counts[retained].sum())
        if len(retained):
            wv.expandos["sample_int"][rows[retained]] = _sample_ints(batch_counts[retained], sample, retain_total)

        if not keep_raw_vocab:
            self.raw_vocab = defaultdict(int)
        self.make_cum_table()
        return {
            "drop_unique": int(np.count_nonzero(~kept)),
            "retain_total": retain_total,
            "downsample_unique": 0,
            "downsample_total": retain_total,
            "num_retained_words": len(retained),
        }


def build_model_from_arrays(
    parameters: Mapping[str, Any],
    keys: list[str],
    counts: np.ndarray,
    vectors: np.ndarray,
    syn1neg: np.ndarray,
) -> StreamingWord2Vec:
    """Build a trained-looking model from its vocabulary and weight arrays.

    Load and compaction share this path. Rows keep the given order, so a
    model rebuilt from its own arrays trains bit-identically to the original
    (given the same RNG state). ``parameters`` are ``StreamingWord2Vec``
    constructor arguments.
    """
    model = StreamingWord2Vec(**parameters)
    if model.sample:
        raise ValueError("models rebuilt from arrays must use sample=0: thresholds are not saved")
    model.lifecycle_events = None  # gensim appends to this list forever otherwise
    wv = model.wv
    wv.index_to_key = list(keys)
    wv.key_to_index = {key: row for row, key in enumerate(wv.index_to_key)}
    if len(wv.key_to_index) != len(keys):
        raise ValueError("duplicate keys in the vocabulary")
    wv.expandos = {}
    wv.allocate_vecattrs(attrs=["count", "sample_int"], types=[int, np.uint32])
    wv.expandos["count"][:] = counts
    wv.expandos["sample_int"][:] = _SAMPLE_INT_SCALE
    wv.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    wv.norms = None
    model.syn1neg = np.ascontiguousarray(syn1neg, dtype=np.float32)
    model.effective_min_count = model.min_count
    model.raw_vocab = defaultdict(int)
    model.make_cum_table()
    return model
