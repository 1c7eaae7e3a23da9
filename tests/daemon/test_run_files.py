"""``darkvec-stream run --input``: backfills, rejects, future timestamps and repeated runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from darkvec_stream.ingest.record import Record
from darkvec_stream.ingest.wire import HEADER, encode_record

CLI = str(Path(sys.executable).with_name("darkvec-stream"))
NS = 1_000_000_000
START_NS = 1_614_556_800 * NS  # 2021-03-01T00:00:00Z


def _write_capture(path, future=False):
    lines = []
    for minute in range(180):
        for sender in range(12):
            record = Record(START_NS + minute * 60 * NS + sender, f"192.0.2.{sender + 1}", "198.51.100.7",
                            40000, 23 if sender < 6 else 445, 6, 60, 2, 50, 1)
            lines.append(encode_record(record).decode())
        if future and minute == 30:
            lines.append(encode_record(Record(4_102_444_800 * NS, "203.0.113.9", "198.51.100.7", 1, 23, 6)).decode())
    lines.insert(90, "not,a,record")
    header = HEADER if isinstance(HEADER, str) else HEADER.decode()
    path.write_text(header.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    return len(lines)


def _run(capture, out, *extra):
    return subprocess.run(
        [CLI, "--set", "metrics.enabled=false", "--set", "sender_filter.min_packets=1",
         "--set", "embedding.vector_size=8", *extra, "run", "--input", str(capture), "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )


def test_future_record_rejected_not_fatal(tmp_path):
    capture = tmp_path / "capture.csv"
    written = _write_capture(capture, future=True)
    completed = _run(capture, tmp_path / "out")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"records read {written}, accepted {written - 2}, rejected 2; of the accepted, 0 arrived" in completed.stdout
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "out" / "deadletter.jsonl").read_text().splitlines()]
    assert sorted(reasons) == ["bad_timestamp", "malformed"]
    assert "windows closed 3," in completed.stdout


def test_second_backfill_same_output_refused(tmp_path):
    capture = tmp_path / "capture.csv"
    _write_capture(capture)
    first = _run(capture, tmp_path / "out")
    assert first.returncode == 0, first.stderr[-2000:]
    second = _run(capture, tmp_path / "out")
    assert second.returncode == 1
    assert "already contains the results of an earlier run" in second.stderr


def test_missing_input_creates_nothing(tmp_path):
    completed = _run(tmp_path / "absent.csv", tmp_path / "out")
    assert completed.returncode == 1
    assert "is not found or not a file" in completed.stderr
    assert not (tmp_path / "out").exists()


def test_busy_metrics_port_is_one_line(tmp_path):
    import socket

    capture = tmp_path / "capture.csv"
    _write_capture(capture)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        completed = subprocess.run(
            [CLI, "--set", f"metrics.port={port}", "run", "--input", str(capture), "--output", str(tmp_path / "o")],
            capture_output=True, text=True, timeout=300,
        )
    assert completed.returncode == 2
    assert f"metrics.port {port} on 127.0.0.1 is in use" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_restart_from_another_directory_cuts_only_its_own_outputs(tmp_path):
    # Checkpointed output sizes are keyed relative to the output directory:
    # a restart from elsewhere cuts its own alerts file, never a file with
    # the same relative name under the new working directory.
    from darkvec_stream.pipeline import _output_sizes, _truncate_outputs

    output = tmp_path / "run" / "out"
    output.mkdir(parents=True)
    alerts = output / "alerts.jsonl"
    alerts.write_bytes(b"one\n")
    sizes = _output_sizes([alerts, tmp_path / "elsewhere.jsonl"], output)
    assert sizes == {"alerts.jsonl": 4, str((tmp_path / "elsewhere.jsonl").resolve()): 0}
    alerts.write_bytes(b"one\ntwo\n")
    bystander = tmp_path / "other" / "alerts.jsonl"
    bystander.parent.mkdir()
    bystander.write_bytes(b"keep me\n" * 3)
    _truncate_outputs(sizes, output)
    assert alerts.read_bytes() == b"one\n"
    assert bystander.read_bytes() == b"keep me\n" * 3
