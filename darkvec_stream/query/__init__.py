"""Answers for analysts: what a sender did, what a cluster is, which alerts fired.

``history`` remembers per-sender activity over recent windows. The query API
and the report read it together with the model, the labels and the clusters.
"""

from darkvec_stream.query.history import SenderHistory, SenderSummary, WindowSpan

__all__ = ["SenderHistory", "SenderSummary", "WindowSpan"]
