"""Simulation settings: validation messages, JSON round trip, address and port helpers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.cli import main
from darkvec_stream.errors import ConfigError
from darkvec_stream.simulate import SimulationConfig
from darkvec_stream.simulate.addresses import _scramble
from darkvec_stream.simulate.config import resolve
from darkvec_stream.simulate.ports import PortTable, parse_port


def test_config_json_round_trip() -> None:
    config = resolve(SimulationConfig(days=3, scale=0.5, seed=42))
    data = json.loads(json.dumps(config.to_dict()))
    assert SimulationConfig.from_dict(data) == config


@pytest.mark.parametrize(("change", "message"), [
    ({"prefix": "100.64.1.0/24"}, "overlaps sender_space"),
    ({"prefix": "198.51.100.7/24"}, "invalid telescope prefix"),
    ({"days": 0}, "invalid days 0"),
    ({"scale": -1.0}, "invalid scale -1.0"),
    ({"start": "yesterday"}, "invalid start time 'yesterday'"),
    ({"chunk_s": 7000}, "invalid chunk_s 7000"),
    ({"duplicate_share": 0.9}, "invalid duplicate_share 0.9"),
])
def test_invalid_setting_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(replace(SimulationConfig(), **change))  # type: ignore[arg-type]


def test_unknown_setting_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown simulation settings \\['window'\\]"):
        SimulationConfig.from_dict({"window": 3})


@pytest.mark.parametrize("spec", ["23", "70000/tcp", "22/sctp", "icmp6"])
def test_invalid_port_rejected(spec: str) -> None:
    with pytest.raises(ConfigError, match="invalid port"):
        parse_port(spec)


@given(st.integers(min_value=16, max_value=24), st.integers(min_value=0, max_value=2**16))
def test_scramble_is_bijection(bits: int, start: int) -> None:
    size = 1 << bits
    index = (np.arange(start, start + 4096) % size)
    scrambled = _scramble(index, bits)
    assert scrambled.max() < size
    assert np.unique(scrambled).size == np.unique(index).size


@settings(max_examples=50)
@given(st.lists(st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=6), min_size=1, max_size=5),
       st.integers(min_value=0, max_value=2**32))
def test_port_draws_stay_in_profile(weights: list[list[float]], seed: int) -> None:
    table = PortTable()
    for profile, profile_weights in enumerate(weights):
        ports = [f"{1000 * (profile + 1) + offset}/tcp" for offset in range(len(profile_weights))]
        table.add(ports, profile_weights)
    table.freeze()
    rng = np.random.default_rng(seed)
    profile = rng.integers(0, len(weights), size=2000)
    port, protocol = table.draw(profile, rng)
    assert np.all(port // 1000 == profile + 1)
    assert np.all(port % 1000 < np.asarray([len(w) for w in weights])[profile])
    assert np.all(protocol == 6)


def test_cli_writes_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--days", "0.1", "--scale", "0.01", "--seed", "2", "--out", str(tmp_path),
                 "--format", "zeek-conn", "--worm-onset-day", "0.05"])
    assert code == 0
    assert "records" in capsys.readouterr().out
    events = json.loads((tmp_path / "events.json").read_text())
    onset = next(event for event in events if event["type"] == "onset")
    assert onset["time"] == "2021-03-01T01:12:00.000000Z"
    assert (tmp_path / "traffic-20210301.log").read_text().startswith("#separator")


def test_cli_rejects_bad_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--prefix", "100.64.0.0/24", "--out", str(tmp_path)])
    assert code == 2
    assert "overlaps sender_space" in capsys.readouterr().err
