"""Prometheus metrics and the health endpoint."""

from darkvec_stream.metrics.registry import PipelineMetrics
from darkvec_stream.metrics.server import Health, MetricsServer

__all__ = ["Health", "MetricsServer", "PipelineMetrics"]
