"""Turn Kafka messages into records: poll a ``RecordConsumer`` and decode each message.

Every message becomes one ``(position, records, rejects)`` triple, so the
caller can track which offsets a window covers. A message that a decoder
cannot handle becomes a reject; it never stops the stream. Committing is
left to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from darkvec_stream.ingest.record import Origin, Record, Rejected
from darkvec_stream.kafka.consumer import RecordConsumer

logger = logging.getLogger(__name__)

Position = tuple[str, int, int]
Decoded = tuple[Position, list[Record], list[Rejected]]
_MAX_LOGGED_DECODER_ERRORS = 10


class MessageDecoder(Protocol):
    def decode_message(self, payload: bytes, origin: Origin) -> tuple[list[Record], list[Rejected]]: ...


def _ingest_decoder(format: str, **options: Any) -> MessageDecoder:
    from darkvec_stream.ingest import get_decoder

    decoder: MessageDecoder = get_decoder(format, **options)
    return decoder


class KafkaRecordSource:
    """Poll Kafka and decode each message with an ingest decoder.

    ``poll()`` returns the decoded messages of one bounded poll; iterating
    the source polls until ``stop()`` is called. Positions are
    ``(topic, partition, offset)`` of the message a record came from.
    """

    def __init__(
        self,
        consumer: RecordConsumer,
        format: str = "record-csv",
        decoder_options: Mapping[str, Any] | None = None,
        poll_timeout_ms: int = 500,
        max_poll_records: int | None = None,
        decoder_factory: Callable[..., MessageDecoder] = _ingest_decoder,
    ) -> None:
        self.consumer = consumer
        self.format = format
        self.poll_timeout_ms = poll_timeout_ms
        self.max_poll_records = max_poll_records
        self._decoder = decoder_factory(format, **dict(decoder_options or {}))
        self._stopped = False
        self.decoder_errors = 0

    def poll(self) -> list[Decoded]:
        """Poll once and return ``(position, records, rejects)`` per message, in offset order."""
        messages = self.consumer.poll_batch(self.poll_timeout_ms, self.max_poll_records)
        return [self._decode(topic, partition, offset, value) for topic, partition, offset, value in messages]

    def __iter__(self) -> Iterator[Decoded]:
        while not self._stopped:
            yield from self.poll()

    def stop(self) -> None:
        """End iteration after the current poll; safe to call from a signal handler."""
        self._stopped = True

    def _decode(self, topic: str, partition: int, offset: int, value: bytes | None) -> Decoded:
        position = (topic, partition, offset)
        origin = Origin(source=topic, partition=partition, offset=offset)
        if not value:
            return position, [], [Rejected("empty", "message has no value", b"", origin)]
        try:
            records, rejects = self._decoder.decode_message(value, origin)
        except Exception as error:  # noqa: BLE001 - a decoder bug must not stop the daemon
            return position, [], [self._decoder_failure(error, value, origin)]
        return position, records, rejects

    def _decoder_failure(self, error: Exception, value: bytes, origin: Origin) -> Rejected:
        self.decoder_errors += 1
        if self.decoder_errors <= _MAX_LOGGED_DECODER_ERRORS:
            logger.error(
                "decoder %s raised on %s[%s]@%s, message rejected (%s of at most %s logged)",
                self.format, origin.source, origin.partition, origin.offset,
                self.decoder_errors, _MAX_LOGGED_DECODER_ERRORS, exc_info=error,
            )
        return Rejected("malformed", f"decoder raised {type(error).__name__}: {error}", value, origin)
