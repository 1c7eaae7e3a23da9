"""Incremental Word2Vec over closed windows, with sender expiry by compaction.

Each closed window adds the senders that reached ``min_count`` to the
vocabulary and trains skip-gram with negative sampling on the window's
sentences. Senders not seen for ``expiry_s`` leave the model when it is
rebuilt from the surviving rows, so memory stays bounded. Nearest-neighbour
search, labels and clusters belong to later stages.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkvec_stream.embedding.corpus import GENSIM_MAX_SENTENCE_WORDS, chunk_sentences, count_senders
from darkvec_stream.embedding.pending import PendingSenders
from darkvec_stream.embedding.state import read_array, read_json, require_keys, write_array, write_json
from darkvec_stream.embedding.word2vec import StreamingWord2Vec, build_model_from_arrays
from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

STATE_FORMAT = "darkvec-stream/sender-embedding/1"
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class EmbeddingUpdate:
    """Changes that one window made to the embedding.

    ``changed`` includes ``added`` and every known sender whose input vector
    moved; ``removed`` lists senders dropped by a compaction that this window
    triggered. ``pending`` are senders of the window still under
    ``min_count``: they have no vector yet.
    """

    generation: int
    window_index: int
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    words_seen: int = 0
    words_trained: int = 0
    vocabulary_s: float = 0.0
    training_s: float = 0.0
    gensim_train_s: float = 0.0
    compaction_s: float = 0.0


class SenderEmbedding:
    """Sender vectors learned window by window with gensim Word2Vec.

    Learning-rate schedule: every window trains ``epochs_per_window`` passes
    with the rate falling linearly from ``alpha_start`` to ``alpha_end``, and
    the next window starts again at ``alpha_start``, because each window
    brings new senders that need the full rate. With ``workers=1`` the run is
    deterministic: the training RNG is reseeded from ``(seed, window.index)``
    before each window, so a saved and reloaded model continues bit-identically.

    >>> from darkvec_stream.windows.model import ClosedWindow, Sentence
    >>> window = ClosedWindow(0, 0, 3_600_000_000_000, (Sentence("telnet", ("a", "b", "a", "c")),), {}, 4, 3, 0)
    >>> embedding = SenderEmbedding(vector_size=8, context=2, epochs_per_window=1, seed=1)
    >>> sorted(embedding.update(window).added)
    ['a', 'b', 'c']
    >>> embedding.vector("a").shape, embedding.vector("unknown")
    ((8,), None)
    """

    def __init__(
        self,
        vector_size: int = 50,
        context: int = 25,
        epochs_per_window: int = 3,
        min_count: int = 1,
        alpha_start: float = 0.025,
        alpha_end: float = 0.0001,
        negative: int = 5,
        workers: int = 1,
        seed: int = 15,
        max_sentence_words: int = GENSIM_MAX_SENTENCE_WORDS,
        expiry_s: float = 7 * 86400,
        compact_every_windows: int = 24,
        compact_expired_share: float = 0.25,
        max_pending_senders: int = 1_000_000,
    ) -> None:
        self.vector_size = _check_int("vector_size", vector_size, 2)
        self.context = _check_int("context", context, 1)
        self.epochs_per_window = _check_int("epochs_per_window", epochs_per_window, 1)
        self.min_count = _check_int("min_count", min_count, 1)
        self.negative = _check_int("negative", negative, 1)
        self.workers = _check_int("workers", workers, 1)
        self.seed = _check_int("seed", seed, 0)
        self.max_sentence_words = _check_int("max_sentence_words", max_sentence_words, self.context + 1)
        if self.max_sentence_words > GENSIM_MAX_SENTENCE_WORDS:
            raise ConfigError(
                f"max_sentence_words={max_sentence_words} is above gensim's limit of "
                f"{GENSIM_MAX_SENTENCE_WORDS}; longer sentences are silently truncated"
            )
        if not 0 < alpha_end <= alpha_start:
            raise ConfigError(f"alpha_start={alpha_start}, alpha_end={alpha_end}: need 0 < alpha_end <= alpha_start")
        self.alpha_start = float(alpha_start)
        self.alpha_end = float(alpha_end)
        if not expiry_s > 0:
            raise ConfigError(f"expiry_s={expiry_s} must be positive (seconds)")
        self.expiry_s = expiry_s
        self.compact_every_windows = _check_int("compact_every_windows", compact_every_windows, 1)
        if not 0 < compact_expired_share <= 1:
            raise ConfigError(f"compact_expired_share={compact_expired_share} must be in (0, 1]")
        self.compact_expired_share = float(compact_expired_share)
        self.max_pending_senders = _check_int("max_pending_senders", max_pending_senders, 1)

        self._model: StreamingWord2Vec | None = None
        self._last_seen_ns = np.zeros(0, dtype=np.int64)
        self._pending = PendingSenders(self.max_pending_senders)
        self._generation = 0
        self._windows_since_compaction = 0

    # -- read access -------------------------------------------------------

    @property
    def generation(self) -> int:
        """Number of windows that changed the model so far."""
        return self._generation

    def __len__(self) -> int:
        return 0 if self._model is None else len(self._model.wv.index_to_key)

    def __contains__(self, sender: object) -> bool:
        return self._row(sender) is not None

    def keys(self) -> list[str]:
        """Embedded senders, in row order (a copy)."""
        return [] if self._model is None else list(self._model.wv.index_to_key)

    def vector(self, sender: str) -> np.ndarray | None:
        """Return a float32 copy of the sender's input vector, or None if it is not embedded."""
        row = self._row(sender)
        if row is None:
            return None
        assert self._model is not None
        return np.array(self._model.wv.vectors[row], dtype=np.float32)

    def vectors(self, senders: list[str] | tuple[str, ...]) -> tuple[list[str], np.ndarray]:
        """Return the embedded senders among ``senders`` and their vectors as a float32 matrix."""
        present: list[str] = []
        rows: list[int] = []
        for sender in senders:
            row = self._row(sender)
            if row is not None:
                present.append(sender)
                rows.append(row)
        if self._model is None:
            return present, np.zeros((0, self.vector_size), dtype=np.float32)
        return present, np.ascontiguousarray(self._model.wv.vectors[rows], dtype=np.float32)

    def last_seen_ns(self, sender: str) -> int | None:
        """Event time the sender was last seen, for embedded senders only."""
        row = self._row(sender)
        return None if row is None else int(self._last_seen_ns[row])

    def pending_count(self, sender: str) -> int:
        """Cumulative occurrences of a sender still under ``min_count`` (0 otherwise)."""
        return self._pending.count(sender)

    def _row(self, sender: object) -> int | None:
        # Only strings are keys: gensim would read a small int as a row number.
        if self._model is None or type(sender) is not str:
            return None
        return self._model.wv.key_to_index.get(sender)

    # -- update ------------------------------------------------------------

    def update(self, window: ClosedWindow) -> EmbeddingUpdate:
        """Add the window's new senders to the vocabulary and train on its sentences."""
        started = time.perf_counter()
        counts = count_senders(window)
        if not counts:
            return EmbeddingUpdate(generation=self._generation, window_index=window.index)

        # 1. Vocabulary: known senders gain counts, pending ones may join.
        seen_ns = _last_seen_per_sender(window, counts)
        added, pending = self._update_vocabulary(counts, seen_ns)
        vocabulary_s = time.perf_counter() - started
        if self._model is None:
            return EmbeddingUpdate(
                generation=self._generation, window_index=window.index, pending=tuple(pending),
                words_seen=sum(counts.values()), vocabulary_s=vocabulary_s,
            )

        # 2. Training on the whole window, with a per-window RNG seed.
        started = time.perf_counter()
        changed, words_trained, gensim_train_s = self._train(window, counts, added)
        training_s = time.perf_counter() - started
        self._generation += 1

        # 3. Expiry, when it is due.
        started = time.perf_counter()
        removed = self._compact_if_due(window.end_ns)
        compaction_s = time.perf_counter() - started
        removed_set = set(removed)
        logger.debug(
            "window %s: generation %s, %s senders added, %s changed, %s pending, %s removed",
            window.index, self._generation, len(added), len(changed), len(pending), len(removed),
        )
        return EmbeddingUpdate(
            generation=self._generation,
            window_index=window.index,
            added=tuple(s for s in added if s not in removed_set),
            changed=tuple(s for s in changed if s not in removed_set),
            pending=tuple(pending),
            removed=tuple(removed),
            words_seen=sum(counts.values()),
            words_trained=words_trained,
            vocabulary_s=vocabulary_s,
            training_s=training_s,
            gensim_train_s=gensim_train_s,
            compaction_s=compaction_s,
        )

    def _update_vocabulary(self, counts: Counter[str], seen_ns: dict[str, int]) -> tuple[list[str], list[str]]:
        """Grow the vocabulary; return (added senders, senders still pending)."""
        key_to_index = {} if self._model is None else self._model.wv.key_to_index
        batch: dict[str, int] = {}
        added: list[str] = []
        pending: list[str] = []
        for sender, occurrences in counts.items():
            if sender in key_to_index:
                batch[sender] = occurrences
                continue
            total = self._pending.add(sender, occurrences, seen_ns[sender])
            if total >= self.min_count:
                # The cumulative count goes in, so gensim's own per-batch
                # min_count check passes exactly when ours does.
                batch[sender] = self._pending.pop(sender)
                added.append(sender)
            else:
                pending.append(sender)
        if len(self._pending) > self.max_pending_senders:
            self._pending.expire(cutoff_ns=np.iinfo(np.int64).min)

        if added:
            self._build_vocabulary(batch)
        elif self._model is not None:
            # No new words: skip build_vocab (gensim has failed on such
            # batches) and only add the counts, which moves the sampling table.
            self._add_counts(batch)
        if self._model is not None:
            self._record_last_seen(seen_ns)
        return added, pending

    def _build_vocabulary(self, batch: dict[str, int]) -> None:
        if self._model is None:
            self._model = StreamingWord2Vec(**self._model_parameters())
            self._model.lifecycle_events = None
            self._model.build_vocab_from_freq(batch, update=False)
        else:
            self._model.build_vocab_from_freq(batch, update=True)
        grown = len(self._model.wv.index_to_key) - len(self._last_seen_ns)
        self._last_seen_ns = np.concatenate([self._last_seen_ns, np.zeros(grown, dtype=np.int64)])

    def _add_counts(self, batch: dict[str, int]) -> None:
        assert self._model is not None
        wv = self._model.wv
        rows = np.fromiter((wv.key_to_index[s] for s in batch), dtype=np.int64, count=len(batch))
        np.add.at(wv.expandos["count"], rows, np.fromiter(batch.values(), dtype=np.int64, count=len(batch)))
        self._model.make_cum_table()

    def _record_last_seen(self, seen_ns: dict[str, int]) -> None:
        assert self._model is not None
        key_to_index = self._model.wv.key_to_index
        for sender, when_ns in seen_ns.items():
            row = key_to_index.get(sender)
            if row is not None and when_ns > self._last_seen_ns[row]:
                self._last_seen_ns[row] = when_ns

    def _train(
        self, window: ClosedWindow, counts: Counter[str], added: list[str]
    ) -> tuple[list[str], int, float]:
        """Train on the window; return (senders whose vectors changed, words trained, seconds in gensim)."""
        model = self._model
        assert model is not None
        known = [sender for sender in counts if sender in model.wv.key_to_index]
        rows = np.fromiter((model.wv.key_to_index[s] for s in known), dtype=np.int64, count=len(known))
        before = model.wv.vectors[rows].copy()

        chunks = chunk_sentences(
            (sentence.senders for sentence in window.sentences), self.max_sentence_words, self.context
        )
        model.random = np.random.RandomState(_window_seed(self.seed, window.index))
        # Restarting the rate each window is intended, so the warning gensim
        # logs when alpha rises again is silenced by resetting its marker.
        model.min_alpha_yet_reached = self.alpha_start
        started = time.perf_counter()
        words_trained, _ = model.train(
            chunks,
            total_examples=len(chunks),
            total_words=sum(len(chunk) for chunk in chunks),
            epochs=self.epochs_per_window,
            start_alpha=self.alpha_start,
            end_alpha=self.alpha_end,
        )
        gensim_train_s = time.perf_counter() - started

        moved = np.any(model.wv.vectors[rows] != before, axis=1)
        added_set = set(added)
        changed = [s for s, m in zip(known, moved.tolist()) if m or s in added_set]
        return changed, int(words_trained), gensim_train_s

    # -- expiry ------------------------------------------------------------

    def expired_share(self, now_ns: int) -> float:
        """Share of the vocabulary not seen within ``expiry_s`` before ``now_ns``."""
        if not len(self):
            return 0.0
        return float(np.count_nonzero(self._last_seen_ns < self._cutoff_ns(now_ns))) / len(self)

    def _cutoff_ns(self, now_ns: int) -> int:
        return int(now_ns - self.expiry_s * _NS_PER_S)

    def _compact_if_due(self, now_ns: int) -> list[str]:
        self._windows_since_compaction += 1
        if (
            self._windows_since_compaction < self.compact_every_windows
            and self.expired_share(now_ns) <= self.compact_expired_share
        ):
            return []
        return self.compact(now_ns)

    def compact(self, now_ns: int) -> list[str]:
        """Rebuild the model without senders last seen more than ``expiry_s`` before ``now_ns``.

        Survivors keep their counts, input vectors and output weights (rows
        are copied in their old order), so training continues as before
        minus the removed senders. Returns the removed senders.
        """
        self._windows_since_compaction = 0
        cutoff_ns = self._cutoff_ns(now_ns)
        self._pending.expire(cutoff_ns)
        if self._model is None:
            return []
        keep = self._last_seen_ns >= cutoff_ns
        if keep.all():
            return []
        keys = self._model.wv.index_to_key
        removed = [keys[row] for row in np.flatnonzero(~keep).tolist()]
        survivors = [keys[row] for row in np.flatnonzero(keep).tolist()]
        self._install_arrays(
            survivors,
            self._model.wv.expandos["count"][keep],
            self._model.wv.vectors[keep],
            self._model.syn1neg[keep],
            self._last_seen_ns[keep],
            self._model.random.get_state(legacy=True),
        )
        logger.info("compacted the embedding: %s senders removed, %s kept", len(removed), len(survivors))
        return removed

    def _install_arrays(
        self,
        keys: list[str],
        counts: np.ndarray,
        vectors: np.ndarray,
        syn1neg: np.ndarray,
        last_seen_ns: np.ndarray,
        random_state: Any,
    ) -> None:
        if not keys:
            self._model = None
            self._last_seen_ns = np.zeros(0, dtype=np.int64)
            return
        model = build_model_from_arrays(self._model_parameters(), keys, counts, vectors, syn1neg)
        model.random.set_state(random_state)
        self._model = model
        self._last_seen_ns = np.array(last_seen_ns, dtype=np.int64)

    def _model_parameters(self) -> dict[str, Any]:
        return {
            "vector_size": self.vector_size,
            "window": self.context,
            "min_count": self.min_count,
            "sg": 1,
            "hs": 0,
            "negative": self.negative,
            "sample": 0,
            "alpha": self.alpha_start,
            "min_alpha": self.alpha_end,
            "epochs": self.epochs_per_window,
            "workers": self.workers,
            "seed": self.seed,
            "sorted_vocab": 0,
        }

    # -- persistence -------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, as saved with the state."""
        return {
            "vector_size": self.vector_size,
            "context": self.context,
            "epochs_per_window": self.epochs_per_window,
            "min_count": self.min_count,
            "alpha_start": self.alpha_start,
            "alpha_end": self.alpha_end,
            "negative": self.negative,
            "workers": self.workers,
            "seed": self.seed,
            "max_sentence_words": self.max_sentence_words,
            "expiry_s": self.expiry_s,
            "compact_every_windows": self.compact_every_windows,
            "compact_expired_share": self.compact_expired_share,
            "max_pending_senders": self.max_pending_senders,
        }

    def save(self, directory: Path) -> None:
        """Write the whole state into ``directory`` (created if missing) as .npy and JSON files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self._model
        random_state = None if model is None else model.random.get_state(legacy=True)
        write_json(directory / "embedding.json", {
            "format": STATE_FORMAT,
            "settings": self.settings(),
            "generation": self._generation,
            "windows_since_compaction": self._windows_since_compaction,
            "vocabulary_size": len(self),
            "random_state": None if random_state is None else {
                "pos": int(random_state[2]),
                "has_gauss": int(random_state[3]),
                "cached_gaussian": float(random_state[4]),
            },
        })
        write_json(directory / "vocabulary.json", self.keys())
        empty = np.zeros((0, self.vector_size), dtype=np.float32)
        write_array(directory / "counts.npy", np.zeros(0, np.int64) if model is None else model.wv.expandos["count"])
        write_array(directory / "last_seen_ns.npy", self._last_seen_ns)
        write_array(directory / "vectors.npy", empty if model is None else model.wv.vectors)
        write_array(directory / "syn1neg.npy", empty if model is None else model.syn1neg)
        write_array(directory / "random_keys.npy", np.zeros(0, np.uint32) if random_state is None else random_state[1])
        write_json(directory / "pending.json", [list(item) for item in self._pending.items()])

    @classmethod
    def load(cls, directory: Path) -> SenderEmbedding:
        """Rebuild an embedding saved by ``save``; raise ``StateError`` for missing or inconsistent files."""
        directory = Path(directory)
        meta_path = directory / "embedding.json"
        meta = read_json(meta_path, dict)
        require_keys(meta_path, meta, ("format", "settings", "generation", "windows_since_compaction",
                                       "vocabulary_size", "random_state"))
        if meta["format"] != STATE_FORMAT:
            raise StateError(f"{meta_path}: format {meta['format']!r} found, {STATE_FORMAT!r} expected")
        try:
            embedding = cls(**meta["settings"])
        except (ConfigError, TypeError) as error:
            raise StateError(f"{meta_path}: invalid saved settings ({error})") from error

        size = meta["vocabulary_size"]
        keys = read_json(directory / "vocabulary.json", list)
        if len(keys) != size or not all(type(key) is str for key in keys):
            raise StateError(f"{directory / 'vocabulary.json'}: expected {size} sender strings")
        counts = read_array(directory / "counts.npy", np.int64, (size,))
        last_seen_ns = read_array(directory / "last_seen_ns.npy", np.int64, (size,))
        vectors = read_array(directory / "vectors.npy", np.float32, (size, embedding.vector_size))
        syn1neg = read_array(directory / "syn1neg.npy", np.float32, (size, embedding.vector_size))
        random_state = _read_random_state(directory, meta["random_state"], size)
        try:
            embedding._install_arrays(keys, counts, vectors, syn1neg, last_seen_ns, random_state)
        except ValueError as error:
            raise StateError(f"{directory}: inconsistent vocabulary ({error})") from error

        pending_path = directory / "pending.json"
        try:
            items = [(str(s), int(c), int(t)) for s, c, t in read_json(pending_path, list)]
        except (TypeError, ValueError) as error:
            raise StateError(f"{pending_path}: expected [sender, count, last_seen_ns] rows ({error})") from error
        embedding._pending = PendingSenders.from_items(embedding.max_pending_senders, items)
        embedding._generation = int(meta["generation"])
        embedding._windows_since_compaction = int(meta["windows_since_compaction"])
        return embedding


def _read_random_state(directory: Path, saved: dict[str, Any] | None, size: int) -> Any:
    """Rebuild the legacy MT19937 state tuple of ``numpy.random.RandomState``."""
    keys_path = directory / "random_keys.npy"
    if size == 0:
        return None
    if not isinstance(saved, dict):
        raise StateError(f"{directory / 'embedding.json'}: random_state missing for a non-empty vocabulary")
    keys = read_array(keys_path, np.uint32, (624,))
    try:
        return ("MT19937", keys, int(saved["pos"]), int(saved["has_gauss"]), float(saved["cached_gaussian"]))
    except (KeyError, TypeError, ValueError) as error:
        raise StateError(f"{directory / 'embedding.json'}: invalid random_state ({error})") from error


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is invalid: expected an integer >= {minimum}")
    return value


def _window_seed(seed: int, window_index: int) -> int:
    """Derive the window's training seed, so a restored model replays it exactly."""
    sequence = np.random.SeedSequence([seed, window_index & 0xFFFFFFFFFFFFFFFF])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def _last_seen_per_sender(window: ClosedWindow, counts: Counter[str]) -> dict[str, int]:
    """Event time of each sender's last packet, or the window end without activity data."""
    fallback_ns = window.end_ns - 1
    seen_ns: dict[str, int] = {}
    for sender in counts:
        activity = window.activity.get(sender)
        seen_ns[sender] = activity.last_ns if activity is not None and activity.last_ns else fallback_ns
    return seen_ns


__all__ = ["EmbeddingUpdate", "SenderEmbedding", "STATE_FORMAT"]
