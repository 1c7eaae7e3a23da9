"""Turn a closed window into the token lists and counts Word2Vec trains on.

Checks that every sender token is a non-empty string, counts occurrences and
splits sentences longer than gensim's 10,000-token limit. It never changes
the window it reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from darkvec_stream.errors import InputError
from darkvec_stream.windows.model import ClosedWindow

# gensim 4.4 trains at most this many tokens of one sentence and silently
# drops the rest (MAX_SENTENCE_LEN in word2vec_inner.pyx).
GENSIM_MAX_SENTENCE_WORDS = 10_000


def count_senders(window: ClosedWindow) -> Counter[str]:
    """Count each sender's tokens in the window, in order of first appearance.

    Raises ``InputError`` for a token that is not a non-empty ``str``: gensim
    reads an integer key below the vocabulary size as a row number, so an
    int token would silently train some other sender.
    """
    counts: Counter[str] = Counter()
    for sentence in window.sentences:
        try:
            counts.update(sentence.senders)
        except TypeError as error:
            raise InputError(
                f"window {window.index}, service {sentence.service!r}: unhashable sender token ({error}); "
                "senders must be non-empty canonical address strings"
            ) from error
    for token in counts:
        if type(token) is not str or not token:
            raise InputError(
                f"window {window.index}: sender token {token!r} of type {type(token).__name__} is invalid; "
                "senders must be non-empty canonical address strings"
            )
    return counts


def chunk_sentences(
    sentences: Iterable[tuple[str, ...]], max_sentence_words: int, overlap_words: int
) -> list[tuple[str, ...]]:
    """Split sentences longer than ``max_sentence_words`` into overlapping chunks.

    Consecutive chunks share ``overlap_words`` tokens (the context size), so
    every pair of senders within the context of each other still trains at
    least once. The price is that the shared tokens train twice as centres:
    at most ``overlap_words / max_sentence_words`` extra work.
    """
    if not 0 <= overlap_words < max_sentence_words:
        raise ValueError(f"overlap_words={overlap_words} must be in [0, max_sentence_words={max_sentence_words})")
    step = max_sentence_words - overlap_words
    chunks: list[tuple[str, ...]] = []
    for senders in sentences:
        if len(senders) <= max_sentence_words:
            if senders:
                chunks.append(senders)
            continue
        start = 0
        while True:
            chunks.append(senders[start : start + max_sentence_words])
            if start + max_sentence_words >= len(senders):
                break
            start += step
    return chunks
