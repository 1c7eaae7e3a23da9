"""Kafka plumbing: an embedded test broker, the record consumer and the replay producer.

This package moves bytes between Kafka and the pipeline. It does not decode
records (``darkvec_stream.ingest`` does) nor window them.
"""

from darkvec_stream.kafka.broker import BrokerError, EmbeddedBroker, find_tansu_binary

__all__ = ["BrokerError", "EmbeddedBroker", "find_tansu_binary"]
