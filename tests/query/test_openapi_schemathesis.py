"""Property-based test driven by the served /openapi.json: schemathesis generates requests, replies must conform.

The schemathesis command line runs every check in every phase against a
query server on 127.0.0.1 over a real daemon run's state. The phases are
coverage (unsupported methods, boundary values), fuzzing (with negative
data) and stateful sequences that follow the description's links.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from darkvec_stream.query.server import QueryServer

pytest.importorskip("schemathesis", reason="schemathesis is a test dependency (pyproject test extra)")

pytestmark = pytest.mark.slow

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def test_api_conforms_to_its_openapi_description(api_server: QueryServer, tmp_path: Path) -> None:
    completed = subprocess.run(
        [SCHEMATHESIS, "run", f"{api_server.url}/openapi.json", "--checks", "all", "--max-examples", "30",
         "--seed", "20210301", "--request-timeout", "10", "--no-color",
         "--report-junit-path", str(tmp_path / "junit.xml")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "6 selected / 6 total" in completed.stdout
    report = (tmp_path / "junit.xml").read_text()
    assert 'failures="0"' in report
    assert 'errors="0"' in report
