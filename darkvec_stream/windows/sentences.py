"""Turn the records of one finished window into sentences and sender activity.

Closing a window converts its records to numpy columns ordered by event
time and sender, counts packets per sender and per service key, gets the
passing senders from the sender filter and the service of each key from
the service map, then builds one sentence per service. This module neither
decides when a window closes nor splits long sentences (the embedding stage
does that for gensim's 10,000-token limit).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from darkvec_stream.ingest.record import Record
from darkvec_stream.windows.fingerprint import mirai_mask
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence
from darkvec_stream.windows.sender_filter import SenderFilter
from darkvec_stream.windows.services import KEY_COUNT, PORT_COUNT, ServiceMap, service_keys

_NONE = -1


def _int_column(records: Sequence[Record], field: int) -> np.ndarray:
    """Return one nullable integer field of every record, with -1 for None."""
    return np.array([_NONE if value is None else value for value in map(itemgetter(field), records)], dtype=np.int64)


class _Columns(NamedTuple):
    """The fields a window close needs, one array each, in (event time, sender) order."""

    ts_ns: np.ndarray
    sender: np.ndarray  # rank of the sender in the sorted sender names
    key: np.ndarray
    dst_port: np.ndarray
    packets: np.ndarray
    mirai: np.ndarray


def _columns(records: Sequence[Record], sender_names: list[str]) -> _Columns:
    """Convert records to columns ordered by (event time, sender name).

    Sender numbers are ranks in the sorted ``sender_names``, so ordering by
    number is ordering by name. That order is enough for byte-identical
    output: records that tie on both belong to one sender. Whatever their order,
    each service receives the same token at that instant and consecutive
    repeats collapse. Activity sums do not depend on order either.
    """
    count = len(records)
    rank = {name: number for number, name in enumerate(sender_names)}
    sender = np.fromiter(map(rank.__getitem__, map(itemgetter(1), records)), dtype=np.int64, count=count)
    ts_ns = np.fromiter(map(itemgetter(0), records), dtype=np.int64, count=count)
    order = np.lexsort((sender, ts_ns))

    protos = _int_column(records, 5)
    dst_ports = _int_column(records, 4)
    mirai = mirai_mask(
        _int_column(records, 11),
        protos,
        _int_column(records, 7),
        _int_column(records, 9),
        list(map(itemgetter(2), records)),
    )
    packets = np.fromiter(map(itemgetter(10), records), dtype=np.int64, count=count)
    return _Columns(
        ts_ns=ts_ns[order],
        sender=sender[order],
        key=service_keys(protos, dst_ports)[order],
        dst_port=dst_ports[order],
        packets=packets[order],
        mirai=mirai[order],
    )


def _sentences(
    sender: np.ndarray,
    service: np.ndarray,
    sender_names: list[str],
    service_names: tuple[str, ...],
) -> tuple[Sentence, ...]:
    """Cut time-ordered (sender, service) tokens into one sentence per service, repeats collapsed."""
    # A stable sort by service keeps the time order inside each service.
    by_service = np.argsort(service, kind="stable")
    sender = sender[by_service]
    service = service[by_service]
    starts_word = np.ones(len(sender), dtype=bool)
    starts_word[1:] = (sender[1:] != sender[:-1]) | (service[1:] != service[:-1])
    sender = sender[starts_word]
    service = service[starts_word]

    tokens = [sender_names[number] for number in sender.tolist()]
    cuts = (np.flatnonzero(np.diff(service)) + 1).tolist()
    sentences = [
        Sentence(service_names[int(service[first])], tuple(tokens[first:last]))
        for first, last in zip([0, *cuts], [*cuts, len(tokens)])
        if first < last
    ]
    sentences.sort(key=lambda sentence: sentence.service)
    return tuple(sentences)


def _activity(
    columns: _Columns,
    service: np.ndarray,
    sender_packets: np.ndarray,
    sender_names: list[str],
    service_names: tuple[str, ...],
) -> dict[str, SenderActivity]:
    """Summarise what each sender in ``columns`` did in the window."""
    sender = columns.sender
    numbers, first_index = np.unique(sender, return_index=True)
    last_index = len(sender) - 1 - np.unique(sender[::-1], return_index=True)[1]
    mirai_packets = np.bincount(sender, weights=columns.packets * columns.mirai, minlength=len(sender_names))
    activity: dict[str, SenderActivity] = {}
    for number, first, last in zip(numbers.tolist(), first_index.tolist(), last_index.tolist()):
        activity[sender_names[number]] = SenderActivity(
            packets=int(sender_packets[number]),
            first_ns=int(columns.ts_ns[first]),
            last_ns=int(columns.ts_ns[last]),
            mirai_packets=int(mirai_packets[number]),
        )

    with_port = columns.dst_port >= 0
    port_pairs = sender[with_port] * PORT_COUNT + columns.dst_port[with_port]
    unique_pairs, pair_of = np.unique(port_pairs, return_inverse=True)
    pair_packets = np.bincount(pair_of, weights=columns.packets[with_port], minlength=len(unique_pairs))
    for pair, count in zip(unique_pairs.tolist(), pair_packets.tolist()):
        activity[sender_names[pair // PORT_COUNT]].dst_ports[pair % PORT_COUNT] = int(count)

    service_count = len(service_names)
    for pair in np.unique(sender * service_count + service).tolist():
        activity[sender_names[pair // service_count]].services.add(service_names[pair % service_count])
    return activity


def close_window(
    index: int,
    window_ns: int,
    records: list[Record],
    services: ServiceMap,
    sender_filter: SenderFilter,
    late_records: int,
) -> ClosedWindow:
    """Build the closed window ``index`` from its records."""
    start_ns = index * window_ns
    end_ns = start_ns + window_ns

    # 1. Columns in (event time, sender) order make the output independent of arrival order.
    sender_names = sorted(dict.fromkeys(map(itemgetter(1), records)))
    columns = _columns(records, sender_names)

    # 2. The filter counts this window before deciding, so a sender that
    #    reaches the threshold inside this window already passes.
    sender_packets = np.bincount(columns.sender, weights=columns.packets, minlength=len(sender_names)).astype(np.int64)
    passed = sender_filter.update(start_ns, sender_names, sender_packets)

    # 3. The service plan is fixed for the whole window.
    key_packets = np.bincount(columns.key, weights=columns.packets, minlength=KEY_COUNT).astype(np.float64)
    plan = services.plan(key_packets, end_ns)

    # 4. Sentences and activity cover only the senders that passed the filter.
    passing = passed[columns.sender]
    passing_columns = _Columns(*(column[passing] for column in columns))
    service = plan.table[passing_columns.key]
    return ClosedWindow(
        index=index,
        start_ns=start_ns,
        end_ns=end_ns,
        sentences=_sentences(passing_columns.sender, service, sender_names, plan.names),
        activity=_activity(passing_columns, service, sender_packets, sender_names, plan.names),
        records=len(records),
        senders_seen=len(sender_names),
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
