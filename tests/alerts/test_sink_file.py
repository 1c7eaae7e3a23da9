"""File sink against real files: append, fsync, rotation, outage, bounded buffer, backoff."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest

from darkvec_stream.alerts.formats import render
from darkvec_stream.alerts.sinks import FileSink, RetryPolicy
from darkvec_stream.errors import StateError
from tests.alerts.factories import CONTEXT, make_alert
from tests.alerts.servers import FakeClock


def _ids(path: Path) -> list[str]:
    return [orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines()]


def test_file_sink_appends_one_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    first = FileSink(path, context=CONTEXT)
    first.send(make_alert(0))
    first.close()
    second = FileSink(path, context=CONTEXT)
    second.send(make_alert(1))
    second.flush()
    assert _ids(path) == [make_alert(0).alert_id, make_alert(1).alert_id]
    assert second.stats.delivered == 1
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o640 & ~umask


@pytest.mark.parametrize("format_name", ["jsonl", "ecs", "cef", "ocsf", "stix", "splunk-hec"])
def test_file_sink_writes_rendering(tmp_path: Path, format_name: str) -> None:
    path = tmp_path / f"alerts.{format_name}"
    sink = FileSink(path, format_name, context=CONTEXT)
    sink.send(make_alert())
    sink.close()
    assert path.read_bytes() == render(make_alert(), format_name, CONTEXT) + b"\n"


def test_file_sink_reopens_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = FileSink(path, context=CONTEXT)
    sink.send(make_alert(0))
    os.rename(path, tmp_path / "alerts.jsonl.1")
    sink.flush()
    sink.send(make_alert(1))
    sink.close()
    assert _ids(tmp_path / "alerts.jsonl.1") == [make_alert(0).alert_id]
    assert _ids(path) == [make_alert(1).alert_id]


def test_file_sink_buffers_and_retries_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="darkvec_stream.alerts")
    path = tmp_path / "alerts.jsonl"
    path.mkdir()  # a folder in the way makes every write fail with IsADirectoryError
    clock = FakeClock()
    sink = FileSink(path, context=CONTEXT, clock=clock, retry=RetryPolicy(1.0, 8.0))

    for index in range(4):
        sink.send(make_alert(index))
    assert sink.stats.buffered == 4
    assert sink.stats.failed_attempts == 1  # later sends wait out the backoff
    assert not sink.available

    clock.advance(1.0)
    sink.poll()
    assert sink.stats.failed_attempts == 2
    clock.advance(1.9)
    sink.poll()
    assert sink.stats.failed_attempts == 2  # second backoff is 2 s
    clock.advance(0.1)
    sink.poll()
    assert sink.stats.failed_attempts == 3

    path.rmdir()
    clock.advance(4.0)
    sink.poll()
    assert sink.available
    assert _ids(path) == [make_alert(index).alert_id for index in range(4)]
    assert sink.stats.delivered == 4
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(unavailable) == 1
    assert len(recovered) == 1


def test_file_sink_drops_oldest_beyond_bound(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.mkdir()
    clock = FakeClock()
    sink = FileSink(path, context=CONTEXT, clock=clock, max_buffered=3)
    for index in range(5):
        sink.send(make_alert(index))
    assert sink.stats.dropped["buffer_full"] == 2
    path.rmdir()
    clock.advance(10)
    sink.flush()
    assert _ids(path) == [make_alert(index).alert_id for index in (2, 3, 4)]


def test_file_sink_counts_unrenderable_alert(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = FileSink(path, context=CONTEXT)
    sink.send(make_alert(0, summary="lone surrogate \udc80"))
    sink.send(make_alert(1))
    sink.close()
    assert sink.stats.dropped["render_failed"] == 1
    assert _ids(path) == [make_alert(1).alert_id]


def test_file_sink_close_counts_undelivered(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.mkdir()
    sink = FileSink(path, context=CONTEXT, clock=FakeClock())
    sink.send(make_alert(0))
    sink.close()
    assert sink.stats.dropped["undelivered_at_close"] == 1
    with pytest.raises(StateError, match="closed"):
        sink.send(make_alert(1))


def test_file_sink_pending_restore(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.mkdir()
    sink = FileSink(path, context=CONTEXT, clock=FakeClock())
    sink.send(make_alert(0))
    sink.send(make_alert(1))
    assert [alert.alert_id for alert in sink.pending_alerts()] == [
        make_alert(0).alert_id, make_alert(1).alert_id,
    ]
    path.rmdir()
    fresh = FileSink(path, context=CONTEXT)
    fresh.restore_pending(sink.pending_alerts())
    fresh.flush()
    assert _ids(path) == [make_alert(0).alert_id, make_alert(1).alert_id]
