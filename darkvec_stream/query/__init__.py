"""Answers for analysts: what a sender did, what a cluster is, which alerts fired.

``history`` remembers per-sender activity over recent windows and ``journal``
the last clustering run, transitions and recent alerts. The query API
and the report read it together with the model, the labels and the clusters.
"""

from darkvec_stream.query.history import SenderHistory, SenderSummary, WindowSpan
from darkvec_stream.query.journal import ClusterJournal

__all__ = ["ClusterJournal", "SenderHistory", "SenderSummary", "WindowSpan"]
