"""Kafka plumbing: an embedded test broker, the record consumer and the replay producer.

This package moves bytes between Kafka and the pipeline. It does not decode
records (``darkvec_stream.ingest`` does) nor window them.
"""

from darkvec_stream.kafka.broker import BrokerError, EmbeddedBroker, find_tansu_binary
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.replay import ReplaySummary, ordered_records, replay
from darkvec_stream.kafka.security import KafkaSecurity, masked
from darkvec_stream.kafka.source import KafkaRecordSource

__all__ = [
    "BrokerError",
    "EmbeddedBroker",
    "KafkaRecordSource",
    "KafkaSecurity",
    "RecordConsumer",
    "ReplaySummary",
    "find_tansu_binary",
    "masked",
    "ordered_records",
    "replay",
]
