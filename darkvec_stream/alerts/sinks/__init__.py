"""Alert sinks: local file, Kafka topic, syslog (UDP/TCP) and Splunk HEC.

Every sink renders alerts in one format, buffers them within a bound,
retries with exponential backoff and counts what it drops.
"""

from darkvec_stream.alerts.sinks.base import (
    DROP_REASONS,
    AlertSink,
    PendingAlert,
    PermanentDeliveryError,
    RetryPolicy,
    SinkStats,
    TransientDeliveryError,
)
from darkvec_stream.alerts.sinks.file import FileSink
from darkvec_stream.alerts.sinks.hec import HecSink, Secret
from darkvec_stream.alerts.sinks.kafka import AlertProducer, KafkaSink
from darkvec_stream.alerts.sinks.syslog import SyslogSink

__all__ = [
    "DROP_REASONS",
    "AlertProducer",
    "AlertSink",
    "FileSink",
    "HecSink",
    "KafkaSink",
    "PendingAlert",
    "PermanentDeliveryError",
    "RetryPolicy",
    "Secret",
    "SinkStats",
    "SyslogSink",
    "TransientDeliveryError",
]
