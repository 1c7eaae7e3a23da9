"""The Mirai fingerprint as a label source, fed by closed windows.

Mirai and its descendants send TCP SYNs whose sequence number equals the
destination IPv4 address read as a big-endian 32-bit integer. The windowing
stage counts such packets per sender (``SenderActivity.mirai_packets``). This
source labels a sender ``mirai`` once its count reaches ``min_packets``, and
drops senders not seen for ``expiry_s``. It does not inspect packets itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.windows.model import ClosedWindow

logger = logging.getLogger(__name__)

MIRAI_LABEL = "mirai"
STATE_FILE = "mirai.json"
_NS_PER_S = 1_000_000_000


class MiraiSource:
    """Senders that carried the Mirai fingerprint, bounded in time and count.

    ``min_packets`` defaults to 1 because the fingerprint has a false-match
    chance of 2**-32 per packet, so one match is already strong evidence.
    ``expiry_s`` should equal the embedding's expiry so that a sender leaves
    the ground truth when it leaves the model. ``max_senders`` bounds memory:
    beyond it, the least recently seen senders are dropped first.

    >>> source = MiraiSource()
    >>> source.label_of("198.51.100.7") is None
    True
    """

    name = "mirai-fingerprint"
    label = MIRAI_LABEL

    def __init__(self, min_packets: int = 1, expiry_s: int = 7 * 86400, max_senders: int = 1_000_000) -> None:
        if min_packets < 1:
            raise ConfigError(f"mirai min_packets {min_packets} is invalid; use 1 or more packets")
        if expiry_s < 1:
            raise ConfigError(f"mirai expiry_s {expiry_s} is invalid; use 1 s or more")
        if max_senders < 1:
            raise ConfigError(f"mirai max_senders {max_senders} is invalid; use 1 or more")
        self.min_packets = min_packets
        self.expiry_s = expiry_s
        self.max_senders = max_senders
        # sender -> [fingerprinted packets so far, last time seen in ns]; the dict
        # order is least recently seen first, which makes eviction and expiry cheap.
        self._senders: dict[str, list[int]] = {}
        self._evicted = 0
        self._expired = 0

    def observe(self, window: ClosedWindow) -> list[str]:
        """Count the window's fingerprinted packets; return senders newly labelled mirai."""
        newly_labelled = []
        for sender, activity in window.activity.items():
            state = self._senders.pop(sender, None)
            if state is None:
                if activity.mirai_packets <= 0:
                    continue
                state = [0, 0]
            was_labelled = state[0] >= self.min_packets
            state[0] += max(activity.mirai_packets, 0)
            state[1] = max(state[1], activity.last_ns or window.end_ns)
            self._senders[sender] = state
            if not was_labelled and state[0] >= self.min_packets:
                newly_labelled.append(sender)
        self._expire(window.end_ns)
        return newly_labelled

    def _expire(self, now_ns: int) -> None:
        horizon_ns = now_ns - self.expiry_s * _NS_PER_S
        # Senders are stored least recently seen first, but last_ns can run
        # slightly out of order inside one window, so scan until a fresh one.
        while self._senders:
            sender, state = next(iter(self._senders.items()))
            if state[1] >= horizon_ns:
                break
            del self._senders[sender]
            self._expired += 1
        while len(self._senders) > self.max_senders:
            del self._senders[next(iter(self._senders))]
            self._evicted += 1

    def label_of(self, sender: str) -> str | None:
        """Return ``mirai`` for a fingerprinted sender, else None."""
        state = self._senders.get(sender)
        if state is None or state[0] < self.min_packets:
            return None
        return MIRAI_LABEL

    def senders(self) -> list[str]:
        """Return the senders currently labelled mirai, least recently seen first."""
        return [sender for sender, state in self._senders.items() if state[0] >= self.min_packets]

    def __len__(self) -> int:
        return sum(1 for state in self._senders.values() if state[0] >= self.min_packets)

    @property
    def expired(self) -> int:
        """Senders forgotten because they were not seen for ``expiry_s``."""
        return self._expired

    @property
    def evicted(self) -> int:
        """Senders dropped because ``max_senders`` was reached."""
        return self._evicted

    def save(self, directory: Path) -> None:
        """Write the state as JSON into ``directory`` (order kept, for exact restore)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": 1,
            "min_packets": self.min_packets,
            "expiry_s": self.expiry_s,
            "max_senders": self.max_senders,
            "expired": self._expired,
            "evicted": self._evicted,
            "senders": [[sender, state[0], state[1]] for sender, state in self._senders.items()],
        }
        (directory / STATE_FILE).write_text(json.dumps(document))

    def load(self, directory: Path) -> None:
        """Replace the state with the one saved in ``directory``."""
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text())
            if document.get("format_version") != 1:
                raise ValueError(f"unsupported format_version {document.get('format_version')!r}")
            senders = {str(sender): [int(packets), int(last_ns)] for sender, packets, last_ns in document["senders"]}
            expired, evicted = int(document["expired"]), int(document["evicted"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"Mirai state {path} is missing or corrupt: {error}") from error
        if document.get("min_packets") != self.min_packets:
            logger.warning(
                "Mirai state %s was saved with min_packets %s, now %s", path, document.get("min_packets"), self.min_packets
            )
        self._senders = senders
        self._expired = expired
        self._evicted = evicted

    @classmethod
    def from_directory(cls, directory: Path) -> MiraiSource:
        """Build a source with the settings and state saved in ``directory``."""
        path = Path(directory) / STATE_FILE
        try:
            document = json.loads(path.read_text())
            source = cls(int(document["min_packets"]), int(document["expiry_s"]), int(document["max_senders"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"Mirai state {path} is missing or corrupt: {error}") from error
        source.load(directory)
        return source
