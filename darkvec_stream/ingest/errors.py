"""Reject reasons and the per-record error that decoders raise internally.

A ``RecordError`` never leaves the ingest stage: the decoding loop turns it
into a ``Rejected`` value so a bad record never stops the daemon.
"""

from __future__ import annotations

from darkvec_stream.errors import InputError

MALFORMED = "malformed"
BAD_TIMESTAMP = "bad_timestamp"
BAD_ADDRESS = "bad_address"
BAD_PORT = "bad_port"
BAD_FIELD = "bad_field"
TRUNCATED = "truncated"
LINE_TOO_LONG = "line_too_long"
UNSUPPORTED_LINK = "unsupported_link"
NOT_IP = "not_ip"
EMPTY = "empty"
LATE = "late"

REASONS = (
    MALFORMED,
    BAD_TIMESTAMP,
    BAD_ADDRESS,
    BAD_PORT,
    BAD_FIELD,
    TRUNCATED,
    LINE_TOO_LONG,
    UNSUPPORTED_LINK,
    NOT_IP,
    EMPTY,
    LATE,
)


class RecordError(InputError):
    """One raw record cannot be decoded; ``detail`` names the field and value."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
