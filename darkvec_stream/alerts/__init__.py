"""SIEM alert outputs: renderings per format, delivering sinks, deduplication and rate limits.

Detectors in ``darkvec_stream.clusters`` decide when an alert is true and
build ``Alert`` values; this package only renders and delivers them.
"""

from darkvec_stream.alerts.dispatch import (
    DEFAULT_CLUSTER_LIMIT,
    DEFAULT_TYPE_LIMITS,
    SUPPRESSION_REASONS,
    AlertDispatcher,
    DispatchReport,
    EmittedLedger,
    RateLimit,
    TokenBuckets,
)
from darkvec_stream.alerts.formats import FORMATS, RenderContext, SyslogHeader, render
from darkvec_stream.alerts.model import Alert, AlertType, Severity, make_alert_id
from darkvec_stream.alerts.sinks import (
    AlertSink,
    FileSink,
    HecSink,
    KafkaSink,
    RetryPolicy,
    Secret,
    SinkStats,
    SyslogSink,
)

__all__ = [
    "DEFAULT_CLUSTER_LIMIT",
    "DEFAULT_TYPE_LIMITS",
    "FORMATS",
    "SUPPRESSION_REASONS",
    "Alert",
    "AlertDispatcher",
    "AlertSink",
    "AlertType",
    "DispatchReport",
    "EmittedLedger",
    "FileSink",
    "HecSink",
    "KafkaSink",
    "RateLimit",
    "RenderContext",
    "RetryPolicy",
    "Secret",
    "Severity",
    "SinkStats",
    "SyslogHeader",
    "SyslogSink",
    "TokenBuckets",
    "make_alert_id",
    "render",
]
