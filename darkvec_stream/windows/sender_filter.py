"""The sender filter: only senders with enough packets over a trailing horizon.

DarkVec keeps a sender once it sent at least ``min_packets`` (10) packets
over the last 30 days, because most senders send a handful of packets and
only add noise. Counting exactly would need memory per sender, which a
spoofed flood makes unbounded, so packets are counted in a ring of
count-min sketches, one per time bucket (a day by default). This module
counts and decides; it does not read records or windows.

Error bound: every estimate is at least the true count, because counters
only grow and conservative update keeps each counter at or above the true
count of every sender hashed to it. So no sender with ``min_packets`` real
packets is ever held back. For a sketch of width ``w`` and depth ``d`` the
overestimate of one sender exceeds ``e / w * N`` packets, where ``N`` is the
total packet count of the buckets read, with probability at most
``exp(-d)``. Conservative update makes the real overestimate much smaller
than that bound; noise senders that pass are false positives of the filter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from darkvec_stream.errors import ConfigError, StateError

logger = logging.getLogger(__name__)

DEFAULT_MIN_PACKETS = 10
DEFAULT_HORIZON_S = 30 * 86400
DEFAULT_BUCKET_S = 86400
DEFAULT_SKETCH_WIDTH = 1 << 18
DEFAULT_SKETCH_DEPTH = 4
MAX_SKETCH_DEPTH = 16

_NS_PER_S = 1_000_000_000
_HASH_PERSON = b"dvs-sender-cms"
_EMPTY_SLOT = -(1 << 62)


def sender_hashes(senders: Sequence[str], depth: int) -> np.ndarray:
    """Return ``depth`` independent 32-bit hashes per sender, shape ``(n, depth)``.

    BLAKE2b with a fixed personalisation string is used instead of Python's
    ``hash()``, which is salted per process and would break checkpoints.
    """
    digest_size = 4 * depth
    raw = b"".join(
        hashlib.blake2b(sender.encode("utf-8", "surrogatepass"), digest_size=digest_size, person=_HASH_PERSON).digest()
        for sender in senders
    )
    return np.frombuffer(raw, dtype="<u4").reshape(len(senders), depth)


def _counter_dtype(cap: int) -> type[np.unsignedinteger]:
    if cap <= np.iinfo(np.uint8).max:
        return np.uint8
    if cap <= np.iinfo(np.uint16).max:
        return np.uint16
    return np.uint32


def _positive_int(name: str, value: object, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum is not None and value > maximum):
        allowed = f"1..{maximum}" if maximum is not None else "a positive integer"
        raise ConfigError(f"invalid sender filter {name} {value!r}: expected {allowed}")
    return value


def _positive_seconds(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"invalid sender filter {name} {value!r}: expected a positive number of seconds")
    value_ns = round(value * _NS_PER_S)
    if value_ns != value * _NS_PER_S:
        raise ConfigError(f"invalid sender filter {name} {value!r}: expected a whole number of nanoseconds")
    return int(value_ns)


class SenderFilter:
    """Decide which senders of a closing window have enough recent packets.

    ``update(window_start_ns, senders, packets)`` adds the window's packets
    per sender to the bucket of the window start, then returns which
    senders reach ``min_packets`` over the current bucket and the
    ``ceil(horizon_s / bucket_s)`` buckets before it. Windows must be given
    in ascending order. The effective horizon is thus between ``horizon_s``
    and ``horizon_s + bucket_s``, never shorter, so the filter errs on
    letting senders in.

    Counters saturate at ``min_packets``: a decision needs no more, and it
    lets counters be one byte each for thresholds up to 255. Memory is
    ``(ceil(horizon_s / bucket_s) + 1) * depth * width`` counters whatever
    the number of senders. ``min_packets=1`` disables the filter and
    allocates nothing.

    >>> sender_filter = SenderFilter(min_packets=3, width=1024, depth=4)
    >>> sender_filter.update(0, ["192.0.2.1", "192.0.2.2"], [2, 1]).tolist()
    [False, False]
    >>> sender_filter.update(3600 * 10**9, ["192.0.2.1"], [1]).tolist()
    [True]
    """

    def __init__(
        self,
        min_packets: int = DEFAULT_MIN_PACKETS,
        horizon_s: float = DEFAULT_HORIZON_S,
        bucket_s: float = DEFAULT_BUCKET_S,
        width: int = DEFAULT_SKETCH_WIDTH,
        depth: int = DEFAULT_SKETCH_DEPTH,
    ) -> None:
        self.min_packets = _positive_int("min_packets", min_packets, np.iinfo(np.uint32).max)
        self.width = _positive_int("width", width, 1 << 31)
        self.depth = _positive_int("depth", depth, MAX_SKETCH_DEPTH)
        self.horizon_s = horizon_s
        self.bucket_s = bucket_s
        self._horizon_ns = _positive_seconds("horizon_s", horizon_s)
        self._bucket_ns = _positive_seconds("bucket_s", bucket_s)
        self._earlier_buckets = -(-self._horizon_ns // self._bucket_ns)
        slots = self._earlier_buckets + 1 if self.enabled else 0
        width_used = self.width if self.enabled else 0
        self._counters = np.zeros((slots, self.depth, width_used), dtype=_counter_dtype(self.min_packets))
        self._slot_bucket = np.full(slots, _EMPTY_SLOT, dtype=np.int64)

    @property
    def enabled(self) -> bool:
        return self.min_packets > 1

    @property
    def counters(self) -> np.ndarray:
        """A read-only view of the counters, shape ``(slots, depth, width)``."""
        view = self._counters.view()
        view.flags.writeable = False
        return view

    @property
    def memory_bytes(self) -> int:
        return int(self._counters.nbytes + self._slot_bucket.nbytes)

    def update(self, window_start_ns: int, senders: Sequence[str], packets: Sequence[int] | np.ndarray) -> np.ndarray:
        """Count the window's packets, then return a boolean mask of the senders that pass.

        ``senders`` must be distinct; ``packets`` contains each one's packet
        count in this window.
        """
        counts = np.asarray(packets, dtype=np.int64)
        if counts.shape != (len(senders),):
            raise ValueError(f"got {len(senders)} senders but packet counts of shape {counts.shape}")
        if not self.enabled:
            return counts >= self.min_packets
        if not senders:
            return np.zeros(0, dtype=bool)
        bucket = window_start_ns // self._bucket_ns
        columns = sender_hashes(senders, self.depth) % np.uint32(self.width)
        self._add(bucket, columns, counts)
        return self._estimate(bucket, columns) >= self.min_packets

    def estimate(self, at_ns: int, senders: Sequence[str]) -> np.ndarray:
        """Return each sender's estimated packet count over the horizon ending in the bucket of ``at_ns``.

        Each bucket contributes at most ``min_packets`` (counters saturate).
        """
        if not self.enabled or not senders:
            return np.zeros(len(senders), dtype=np.int64)
        columns = sender_hashes(senders, self.depth) % np.uint32(self.width)
        return self._estimate(at_ns // self._bucket_ns, columns)

    def _slot_for(self, bucket: int) -> int:
        slot = bucket % len(self._slot_bucket)
        if self._slot_bucket[slot] > bucket:
            # Reusing the slot would wipe the counts of a newer bucket.
            raise ValueError(
                f"window bucket {bucket} is older than the horizon of bucket {int(self._slot_bucket[slot])}: "
                "windows must be counted in ascending order"
            )
        if self._slot_bucket[slot] != bucket:
            # The slot contains a bucket that left the horizon, so it is reused.
            self._counters[slot] = 0
            self._slot_bucket[slot] = bucket
        return slot

    def _add(self, bucket: int, columns: np.ndarray, counts: np.ndarray) -> None:
        """Conservative update of one bucket's sketch with a batch of distinct senders.

        Each counter is raised to at least (the sender's estimate before the
        batch + its count), never added to. Senders of one batch that share
        a counter take the maximum, which keeps every counter at or above
        the true count of every sender hashed to it.
        """
        slot = self._slot_for(bucket)
        sketch = self._counters[slot]
        rows = np.arange(self.depth)
        before = sketch[rows, columns].min(axis=1).astype(np.int64)
        target = np.minimum(before + counts, self.min_packets).astype(sketch.dtype)
        for row in range(self.depth):
            np.maximum.at(sketch[row], columns[:, row], target)

    def _estimate(self, bucket: int, columns: np.ndarray) -> np.ndarray:
        live = np.flatnonzero(
            (self._slot_bucket >= bucket - self._earlier_buckets) & (self._slot_bucket <= bucket)
        )
        rows = np.arange(self.depth)
        # One gather of shape (live buckets, senders, depth) instead of a loop over buckets.
        counters = self._counters[live[:, None, None], rows[None, None, :], columns[None, :, :]]
        return counters.min(axis=2).sum(axis=0, dtype=np.int64)

    def save(self, directory: Path) -> None:
        """Write the sketch as ``.npy`` arrays and its settings as JSON."""
        settings = {
            "min_packets": self.min_packets,
            "horizon_ns": self._horizon_ns,
            "bucket_ns": self._bucket_ns,
            "width": self.width,
            "depth": self.depth,
        }
        (directory / "sender_filter.json").write_text(json.dumps(settings), encoding="utf-8")
        np.save(directory / "sender_filter_counters.npy", self._counters, allow_pickle=False)
        np.save(directory / "sender_filter_buckets.npy", self._slot_bucket, allow_pickle=False)

    def load(self, directory: Path) -> None:
        """Restore a sketch saved with the same settings; raise ``StateError`` otherwise."""
        path = directory / "sender_filter.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            counters = np.load(directory / "sender_filter_counters.npy", allow_pickle=False)
            slot_bucket = np.load(directory / "sender_filter_buckets.npy", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise StateError(f"unreadable sender filter state in {directory}: {error}") from error
        expected = {
            "min_packets": self.min_packets,
            "horizon_ns": self._horizon_ns,
            "bucket_ns": self._bucket_ns,
            "width": self.width,
            "depth": self.depth,
        }
        if saved != expected:
            raise StateError(
                f"the sender filter state in {directory} was saved with {saved} but the configuration is "
                f"{expected}: use the same sender filter settings or start without that checkpoint"
            )
        if counters.shape != self._counters.shape or counters.dtype != self._counters.dtype:
            raise StateError(f"invalid sender filter counters in {directory}: shape {counters.shape} {counters.dtype}")
        if slot_bucket.shape != self._slot_bucket.shape or slot_bucket.dtype != np.int64:
            raise StateError(f"invalid sender filter buckets in {directory}: shape {slot_bucket.shape}")
        self._counters = counters
        self._slot_bucket = slot_bucket
