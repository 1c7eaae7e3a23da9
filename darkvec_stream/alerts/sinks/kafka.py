"""Produce rendered alerts to a Kafka topic, keyed by alert id.

The sink takes any producer with kafka-python's ``send(topic, value=, key=)``
and ``flush(timeout=)``; creating and configuring the producer (bootstrap
servers, TLS, SASL) is the caller's job. Keying by alert id sends every
copy of one alert to one partition, so consumers can drop duplicates.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from kafka.errors import KafkaError

from darkvec_stream.alerts.sinks.base import AlertSink, PendingAlert, TransientDeliveryError
from darkvec_stream.errors import ConfigError


class AlertProducer(Protocol):
    """The two producer methods the sink calls (kafka-python's signatures)."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...


class KafkaSink(AlertSink):
    """Send alerts to ``topic`` through ``producer``, waiting for acknowledgements per batch.

    ``ack_timeout_s`` bounds the wait for each batch. A kafka-python producer
    should be built with a small ``max_block_ms`` (for example 5000),
    because ``send`` blocks up to that long while the broker is unreachable.
    """

    def __init__(
        self,
        producer: AlertProducer,
        topic: str,
        format: str = "jsonl",
        *,
        name: str | None = None,
        ack_timeout_s: float = 10.0,
        **options: Any,
    ) -> None:
        if not topic:
            raise ConfigError("alert Kafka topic is empty; set the alert topic name")
        super().__init__(name=name or f"kafka:{topic}", format=format, **options)
        self._producer = producer
        self._topic = topic
        self._ack_timeout_s = ack_timeout_s

    def _deliver(self, batch: Sequence[PendingAlert]) -> None:
        futures = []
        try:
            for pending in batch:
                key = pending.alert.alert_id.encode("utf-8")
                futures.append(self._producer.send(self._topic, value=pending.payload, key=key))
            self._producer.flush(timeout=self._ack_timeout_s)
        except (KafkaError, OSError) as error:
            raise TransientDeliveryError(f"producing to {self._topic} failed: {error!r}") from error
        for index, future in enumerate(futures):
            self._await_ack(future, index)

    def _await_ack(self, future: Any, index: int) -> None:
        # kafka-python returns futures whose get() raises the delivery error;
        # other producers may return None, which counts as acknowledged.
        get = getattr(future, "get", None)
        if get is None:
            return
        try:
            get(timeout=self._ack_timeout_s)
        except (KafkaError, OSError) as error:
            raise TransientDeliveryError(
                f"broker did not acknowledge alert on {self._topic}: {error!r}", delivered=index
            ) from error
