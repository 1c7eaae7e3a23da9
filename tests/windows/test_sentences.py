"""Tests of the sentence dump written for ``run --dump-sentences``."""

from __future__ import annotations

import calendar
from pathlib import Path

from darkvec_stream.windows import ClosedWindow, Sentence, sentences_file_name, write_sentences

START_NS = calendar.timegm((2013, 3, 3, 21, 0, 0)) * 10**9


def window(sentences: tuple[Sentence, ...]) -> ClosedWindow:
    return ClosedWindow(
        index=START_NS // (3600 * 10**9),
        start_ns=START_NS,
        end_ns=START_NS + 3600 * 10**9,
        sentences=sentences,
        activity={},
        records=0,
        senders_seen=0,
        late_records=0,
    )


def test_file_name_from_window_start() -> None:
    assert sentences_file_name(window(())) == "2013-03-03T21-00-00Z.txt"


def test_one_line_per_sentence(tmp_path: Path) -> None:
    closed = window((Sentence("smb", ("192.0.2.1", "192.0.2.9")), Sentence("telnet", ("2001:db8::1",))))
    path = write_sentences(closed, tmp_path / "dump")
    assert path == tmp_path / "dump" / "2013-03-03T21-00-00Z.txt"
    assert path.read_text(encoding="utf-8") == "smb\t192.0.2.1 192.0.2.9\ntelnet\t2001:db8::1\n"


def test_rewrite_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_sentences(window((Sentence("smb", ("a",)),)), tmp_path)
    path = write_sentences(window(()), tmp_path)
    assert path.read_text(encoding="utf-8") == ""
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]
