"""Paths of the real captures used by the ingest tests (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import REAL_DATA as REAL
MARX = REAL / "marx-iptables-2013" / "marx.csv.gz"
DARKVEC_DAYS = sorted((REAL / "darkvec-polito-sample").glob("darknet01_*.csv.gz"))
GREYNOISE = REAL / "greynoise-noise-storm-pcap" / "brazil-storm-small-tcp-sample.pcap"


def need(path: Path) -> Path:
    """Skip the test when a real capture is not on this machine."""
    if not path.exists():
        pytest.skip(f"real capture not available: {path}")
    return path
