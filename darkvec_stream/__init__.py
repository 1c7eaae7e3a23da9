"""darkvec-stream: streaming DarkVec for network telescopes.

Records from a darknet feed are windowed by event time into per-service
sender sentences, embedded with an incremental Word2Vec model, labelled by
nearest neighbours, clustered and tracked, and turned into SIEM alerts.
"""

__version__ = "0.1.0"
