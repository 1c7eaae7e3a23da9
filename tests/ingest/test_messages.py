"""Errors for a wrong format, preset or option name the value and the fix."""

from __future__ import annotations

import gzip
from pathlib import Path

import dpkt
import pytest

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest import get_decoder, read_file
from tests.ingest.test_pcap import ipv4_packet


PRESET_OPTIONS = {"csv": {"preset": "marx-iptables"}, "jsonl": {"preset": "goflow2"}}


def write_capture(path: Path) -> Path:
    with open(path, "wb") as handle:
        dpkt.pcap.Writer(handle, linktype=101).writepkt(ipv4_packet(), ts=1.0)
    return path


@pytest.mark.parametrize("format", ["csv", "record-csv", "jsonl", "zeek-conn"])
def test_pcap_read_as_text_names_format(tmp_path: Path, format: str) -> None:
    path = write_capture(tmp_path / "capture.pcap")
    options = PRESET_OPTIONS.get(format, {})

    with pytest.raises(InputError, match=r"looks like a pcap file .*use --format pcap"):
        list(read_file(path, format, **options))


def test_gzipped_pcap_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcap.gz"
    path.write_bytes(gzip.compress(write_capture(tmp_path / "capture.pcap").read_bytes()))

    with pytest.raises(InputError, match="use --format pcap"):
        list(read_file(path, "record-csv"))


def test_double_gzip_says_decompress(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv.gz"
    path.write_bytes(gzip.compress(gzip.compress(b"ts_ns,src\n")))

    with pytest.raises(InputError, match="gzip inside gzip.*decompress it once"):
        list(read_file(path, "record-csv"))


def test_binary_header_names_format(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\n1,2\n")

    with pytest.raises(InputError, match=r"not valid UTF-8, so this is not a csv file; check --format"):
        list(read_file(path, "csv", preset="marx-iptables"))


def test_jsonl_without_preset_suggests_presets() -> None:
    with pytest.raises(ConfigError) as caught:
        get_decoder("jsonl")

    message = str(caught.value)
    assert "ts_ns, src" in message
    assert "goflow2|pmacct|zeek-json" in message
    assert "input.decoder_options.fields" in message


def test_csv_without_preset_suggests_preset() -> None:
    with pytest.raises(ConfigError, match=r"marx-iptables.*input.decoder_options.columns"):
        get_decoder("csv")


def test_unknown_option_names_source_and_presets() -> None:
    with pytest.raises(ConfigError) as caught:
        get_decoder("record-csv", preset="wat", wat=1)

    message = str(caught.value)
    assert "unknown option preset, wat for format 'record-csv'" in message
    assert "input.decoder_options" in message
    assert "--preset" in message
    assert "max_line_bytes" in message
    assert "presets exist only for csv (marx-iptables), jsonl (goflow2, pmacct, zeek-json)" in message
