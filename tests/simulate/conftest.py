"""Small simulated runs shared by the simulator tests (generated once per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkvec_stream.simulate import SimulationConfig, SimulationResult, write_simulation

SMALL = SimulationConfig(days=2, scale=0.02, seed=7)


@pytest.fixture(scope="package")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """Two days at scale 0.02 in record-csv: about 120 k records."""
    return write_simulation(SMALL, tmp_path_factory.mktemp("small") / "out", "record-csv")


def read_rows(paths: tuple[Path, ...]) -> list[list[str]]:
    rows: list[list[str]] = []
    for path in paths:
        lines = path.read_text(encoding="ascii").splitlines()
        rows += [line.split(",") for line in lines[1:]]
    return rows
