"""Event-time windows, services, the sender filter and sentences.

Records go in, ``ClosedWindow`` values come out; see ``docs/windows.md``
for the semantics of windows, watermark, lateness and services.
"""

from darkvec_stream.windows.fingerprint import ipv4_to_int, is_mirai
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence, WindowSink
from darkvec_stream.windows.sender_filter import SenderFilter
from darkvec_stream.windows.sentences import close_window, sentences_file_name, write_sentences
from darkvec_stream.windows.services import (
    DEFAULT_DOMAIN_SERVICES,
    DEFAULT_TOP_N,
    SERVICE_MODES,
    AutoServices,
    DomainServices,
    ServiceMap,
    ServicePlan,
    SingleServices,
    make_services,
    service_key,
)
from darkvec_stream.windows.windower import Windower

__all__ = [
    "DEFAULT_DOMAIN_SERVICES",
    "DEFAULT_TOP_N",
    "SERVICE_MODES",
    "AutoServices",
    "ClosedWindow",
    "DomainServices",
    "SenderActivity",
    "SenderFilter",
    "Sentence",
    "ServiceMap",
    "ServicePlan",
    "SingleServices",
    "WindowSink",
    "Windower",
    "close_window",
    "ipv4_to_int",
    "is_mirai",
    "make_services",
    "sentences_file_name",
    "service_key",
    "write_sentences",
]
