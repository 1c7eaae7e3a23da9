"""The published training recipes, written for this benchmark, on the pipeline's own sentences.

Three ways to turn the same windows of sentences into sender vectors with
plain gensim 4.4 Word2Vec: the DarkVec batch retrain (all sentences, 20
epochs), the i-DarkVec daily update (one ``build_vocab(update=True)`` and one
epoch per day) and a bare per-window update that mirrors the streaming
settings, used as the cost reference. Windowing, labels and scoring are not
done here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from gensim.models import Word2Vec

from bench.quality_pipeline import WindowSentences

logger = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000
# gensim trains at most this many tokens of a sentence and drops the rest.
GENSIM_MAX_SENTENCE_WORDS = 10_000


@dataclass(frozen=True)
class TrainedVectors:
    """Unit sender vectors from one recipe, with what training them cost."""

    name: str
    senders: tuple[str, ...]
    vectors: np.ndarray
    seconds: float
    vocabulary_s: float
    words_trained: int

    def select(self, senders: Sequence[str]) -> np.ndarray:
        """Return the unit vectors of ``senders``, in that order (each must be known)."""
        row_of = {sender: row for row, sender in enumerate(self.senders)}
        return self.vectors[[row_of[sender] for sender in senders]]


def split_long(sentences: Iterable[tuple[str, ...]]) -> list[list[str]]:
    """Cut sentences into pieces gensim trains whole (at most 10,000 tokens each)."""
    pieces: list[list[str]] = []
    for sentence in sentences:
        for start in range(0, len(sentence), GENSIM_MAX_SENTENCE_WORDS):
            pieces.append(list(sentence[start:start + GENSIM_MAX_SENTENCE_WORDS]))
    return pieces


def _model(vector_size: int, context: int, seed: int, workers: int) -> Word2Vec:
    # Skip-gram, negative sampling 5, no subsampling: the setting both papers use.
    return Word2Vec(vector_size=vector_size, window=context, sg=1, hs=0, negative=5, sample=0,
                    min_count=1, workers=workers, seed=seed)


def _unit_vectors(name: str, model: Word2Vec, seconds: float, vocabulary_s: float, words: int) -> TrainedVectors:
    matrix = np.asarray(model.wv.vectors, dtype=np.float32)
    norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return TrainedVectors(name, tuple(model.wv.index_to_key), matrix / norms, seconds, vocabulary_s, words)


def darkvec_batch(windows: Sequence[WindowSentences], *, vector_size: int = 50, context: int = 25,
                  epochs: int = 20, seed: int = 15, workers: int = 1) -> TrainedVectors:
    """Train one model on every window's sentences at once: the DarkVec retrain of the whole period."""
    sentences = split_long(sentence for window in windows for sentence in window.sentences)
    model = _model(vector_size, context, seed, workers)
    started = time.perf_counter()
    model.build_vocab(sentences)
    vocabulary_s = time.perf_counter() - started
    words, _ = model.train(sentences, total_examples=len(sentences), total_words=sum(map(len, sentences)),
                           epochs=epochs)
    seconds = time.perf_counter() - started
    logger.info("darkvec batch: %s senders, %s words trained in %.1f s", len(model.wv), words, seconds)
    return _unit_vectors(f"darkvec-batch c{context} d{vector_size} e{epochs}", model, seconds, vocabulary_s, words)


def days_of(windows: Sequence[WindowSentences]) -> list[list[WindowSentences]]:
    """Group windows by the UTC day (counted from the first window) their start falls in."""
    if not windows:
        return []
    first_day = windows[0].start_ns // NS_PER_DAY
    days: dict[int, list[WindowSentences]] = {}
    for window in windows:
        days.setdefault(window.start_ns // NS_PER_DAY - first_day, []).append(window)
    return [days[day] for day in sorted(days)]


def idarkvec_daily(windows: Sequence[WindowSentences], *, vector_size: int = 200, context: int = 5,
                   seed: int = 15, workers: int = 1) -> TrainedVectors:
    """Update one model once a day: ``build_vocab(update=True)`` then one epoch on that day's sentences.

    The learning rate follows gensim's default ramp, restarted by every
    ``train()`` call, as the i-DarkVec code does.
    """
    model = _model(vector_size, context, seed, workers)
    seconds = vocabulary_s = 0.0
    words_total = 0
    for day in days_of(windows):
        sentences = split_long(sentence for window in day for sentence in window.sentences)
        if not sentences:
            continue
        started = time.perf_counter()
        _grow_vocabulary(model, sentences)
        vocabulary_s += time.perf_counter() - started
        # total_examples is passed because corpus_count only covers the last
        # vocabulary batch, which would mis-set the learning-rate ramp. The
        # marker reset silences gensim's warning that the ramp restarted.
        model.min_alpha_yet_reached = model.alpha
        words, _ = model.train(sentences, total_examples=len(sentences), total_words=sum(map(len, sentences)),
                               epochs=1)
        seconds += time.perf_counter() - started
        words_total += words
    logger.info("i-darkvec daily: %s senders, %s words trained in %.1f s", len(model.wv), words_total, seconds)
    return _unit_vectors(f"i-darkvec daily c{context} d{vector_size}", model, seconds, vocabulary_s, words_total)


def gensim_per_window(windows: Sequence[WindowSentences], *, vector_size: int = 50, context: int = 25,
                      epochs: int = 3, alpha_start: float = 0.025, alpha_end: float = 0.0001,
                      seed: int = 15, workers: int = 1) -> TrainedVectors:
    """Update a stock gensim model per window with the streaming defaults: the bare-training cost reference."""
    model = _model(vector_size, context, seed, workers)
    seconds = vocabulary_s = 0.0
    words_total = 0
    for window in windows:
        sentences = split_long(window.sentences)
        if not sentences:
            continue
        started = time.perf_counter()
        _grow_vocabulary(model, sentences)
        vocabulary_s += time.perf_counter() - started
        # The rate restarts every window on purpose; resetting gensim's marker
        # keeps it from warning about the rise once per window.
        model.min_alpha_yet_reached = alpha_start
        words, _ = model.train(sentences, total_examples=len(sentences), total_words=sum(map(len, sentences)),
                               epochs=epochs, start_alpha=alpha_start, end_alpha=alpha_end)
        seconds += time.perf_counter() - started
        words_total += words
    return _unit_vectors(f"gensim per window c{context} d{vector_size} e{epochs}", model, seconds,
                         vocabulary_s, words_total)


def _grow_vocabulary(model: Word2Vec, sentences: list[list[str]]) -> None:
    if not model.wv.index_to_key:
        model.build_vocab(sentences)
        return
    known = model.wv.key_to_index
    # build_vocab(update=True) on a batch without new words has failed in
    # gensim before, and without new words there is nothing to add.
    if any(token not in known for sentence in sentences for token in sentence):
        model.build_vocab(sentences, update=True)
