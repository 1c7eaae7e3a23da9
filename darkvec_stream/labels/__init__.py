"""Ground-truth labels, kNN labelling with abstain, evaluation and export.

Label sources (scanner lists, the Mirai fingerprint) feed a ``LabelBook``;
``KnnLabeller`` labels other senders from their nearest labelled neighbours;
``leave_one_out`` scores it. Vectors come from the embedding stage and
neighbours from the index stage; this package only reads them.
"""

from darkvec_stream.labels.book import MIRAI_SOURCE_NAME, BookStats, LabelBook, LabelMatch
from darkvec_stream.labels.evaluate import EvaluationReport, StaticLabels, leave_one_out, threshold_sweep
from darkvec_stream.labels.knn import KnnLabeller, LabelDecision
from darkvec_stream.labels.mirai import MiraiSource
from darkvec_stream.labels.neighbours import ExactNeighbourSearch
from darkvec_stream.labels.normalise import normalise_label
from darkvec_stream.labels.sources import LabelSource, SourceStats, load_source

__all__ = [
    "BookStats",
    "EvaluationReport",
    "ExactNeighbourSearch",
    "KnnLabeller",
    "LabelBook",
    "LabelDecision",
    "LabelMatch",
    "LabelSource",
    "MIRAI_SOURCE_NAME",
    "MiraiSource",
    "SourceStats",
    "StaticLabels",
    "leave_one_out",
    "load_source",
    "normalise_label",
    "threshold_sweep",
]
