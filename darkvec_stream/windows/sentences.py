"""Turn the records of one finished window into sentences and sender activity.

Closing a window orders its records, counts packets per sender and per
service key, asks the sender filter which senders pass and the service map
which service each key belongs to, then builds one sentence per service.
This module neither decides when a window closes nor splits long sentences
(the embedding stage does that for gensim's 10,000-token limit).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Sequence

import numpy as np

from darkvec_stream.ingest.record import PROTO_TCP, PROTO_UDP, Record
from darkvec_stream.windows.fingerprint import is_mirai
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence
from darkvec_stream.windows.sender_filter import SenderFilter
from darkvec_stream.windows.services import (
    KEY_COUNT,
    PORT_COUNT,
    PROTO_KEY_BASE,
    UDP_KEY_BASE,
    UNKNOWN_PROTO_KEY,
    ServiceMap,
)

# Sorting by (event time, sender) is enough for byte-identical output:
# records that tie on both belong to one sender, so whatever their order,
# each service sees the same sender token at that instant and consecutive
# repeats collapse; activity sums do not depend on order either.
_ORDER_KEY = itemgetter(0, 1)


def _service_keys(records: Sequence[Record]) -> list[int]:
    """Return ``service_key(proto, dst_port)`` for every record (inlined for speed)."""
    keys: list[int] = []
    append = keys.append
    for record in records:
        port = record[4]
        proto = record[5]
        if port is not None and 0 <= port < PORT_COUNT and (proto == PROTO_TCP or proto == PROTO_UDP):
            append(port if proto == PROTO_TCP else UDP_KEY_BASE + port)
        elif proto is None or not 0 <= proto <= 255:
            append(UNKNOWN_PROTO_KEY)
        else:
            append(PROTO_KEY_BASE + proto)
    return keys


def _count_packets(records: Sequence[Record], keys: Sequence[int]) -> tuple[dict[str, int], dict[int, int]]:
    sender_packets: dict[str, int] = {}
    key_packets: dict[int, int] = {}
    sender_get = sender_packets.get
    key_get = key_packets.get
    for record, key in zip(records, keys):
        packets = record[10]
        src = record[1]
        sender_packets[src] = sender_get(src, 0) + packets
        key_packets[key] = key_get(key, 0) + packets
    return sender_packets, key_packets


def _build_sentences(
    records: Sequence[Record],
    keys: Sequence[int],
    service_of_key: dict[int, str],
    passing: set[str],
) -> tuple[dict[str, list[str]], dict[str, SenderActivity]]:
    """Walk the ordered records of passing senders once, filling sentences and activity."""
    sentences: dict[str, list[str]] = {}
    activity: dict[str, SenderActivity] = {}
    for record, key in zip(records, keys):
        src = record[1]
        if src not in passing:
            continue
        service = service_of_key[key]
        sentence = sentences.get(service)
        if sentence is None:
            sentences[service] = [src]
        elif sentence[-1] != src:
            sentence.append(src)

        ts_ns = record[0]
        packets = record[10]
        sender = activity.get(src)
        if sender is None:
            sender = activity[src] = SenderActivity(first_ns=ts_ns)
        sender.packets += packets
        sender.last_ns = ts_ns
        sender.services.add(service)
        port = record[4]
        if port is not None:
            ports = sender.dst_ports
            ports[port] = ports.get(port, 0) + packets
        mirai = record[11]
        # is_mirai is only called when the flag is absent and a sequence
        # number exists, because most darknet packets fail cheaply here.
        if mirai or (mirai is None and record[9] is not None and is_mirai(record)):
            sender.mirai_packets += packets
    return sentences, activity


def close_window(
    index: int,
    window_ns: int,
    records: list[Record],
    services: ServiceMap,
    sender_filter: SenderFilter,
    late_records: int,
) -> ClosedWindow:
    """Build the closed window ``index`` from its records (sorted in place)."""
    start_ns = index * window_ns
    end_ns = start_ns + window_ns

    # 1. A total order on (event time, sender) makes the output independent of arrival order.
    records.sort(key=_ORDER_KEY)

    # 2. Packets per sender feed the filter; packets per key feed the service map.
    keys = _service_keys(records)
    sender_packets, key_packets = _count_packets(records, keys)

    # 3. The filter counts this window before deciding, so a sender that
    #    reaches the threshold inside this window already passes.
    senders = list(sender_packets)
    passed = sender_filter.update(start_ns, senders, np.fromiter(sender_packets.values(), dtype=np.int64, count=len(senders)))
    passing = set(compress(senders, passed.tolist()))

    # 4. The service plan is fixed for the whole window.
    dense_packets = np.zeros(KEY_COUNT, dtype=np.float64)
    window_keys = list(key_packets)
    dense_packets[window_keys] = list(key_packets.values())
    plan = services.plan(dense_packets, end_ns)
    names = plan.names
    service_of_key = {key: names[slot] for key, slot in zip(window_keys, plan.table[window_keys].tolist())}

    # 5. One pass over the ordered records builds sentences and activity.
    sentence_lists, activity = _build_sentences(records, keys, service_of_key, passing)
    sentences = tuple(Sentence(service, tuple(sentence_lists[service])) for service in sorted(sentence_lists))
    return ClosedWindow(
        index=index,
        start_ns=start_ns,
        end_ns=end_ns,
        sentences=sentences,
        activity=activity,
        records=len(records),
        senders_seen=len(senders),
        late_records=late_records,
    )


def window_start_iso(start_ns: int) -> str:
    """Return a window start as ISO 8601 UTC with seconds, e.g. ``2013-03-03T21:00:00Z``."""
    start = datetime.fromtimestamp(start_ns // 1_000_000_000, tz=timezone.utc)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def sentences_file_name(window: ClosedWindow) -> str:
    """Return the dump file name of a window, e.g. ``2013-03-03T21-00-00Z.txt``."""
    return window_start_iso(window.start_ns).replace(":", "-") + ".txt"


def write_sentences(window: ClosedWindow, directory: Path) -> Path:
    """Write one closed window's sentences to ``directory`` and return the file path.

    One line per sentence: the service, a tab, then the senders separated by
    single spaces. The file is written under a temporary name and renamed,
    so a reader never sees half a window.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / sentences_file_name(window)
    lines = [f"{sentence.service}\t{' '.join(sentence.senders)}\n" for sentence in window.sentences]
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".sentences-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.writelines(lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
