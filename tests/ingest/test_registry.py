from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest import FORMATS, get_decoder, read_batches, read_file
from darkvec_stream.ingest.errors import REASONS
from darkvec_stream.ingest.record import Origin, Rejected
from tests.ingest.conftest import DARKVEC_DAYS, MARX, need

TEXT_DECODERS = {
    "record-csv": {},
    "darkvec-csv": {},
    "csv": {"preset": "marx-iptables"},
    "jsonl": {"preset": "goflow2"},
    "zeek-conn": {},
}


def test_formats_are_the_agreed_names() -> None:
    assert FORMATS == ("record-csv", "darkvec-csv", "csv", "jsonl", "zeek-conn", "pcap")


def test_unknown_format_lists_allowed() -> None:
    with pytest.raises(ConfigError, match="'parquet'.*record-csv, darkvec-csv"):
        get_decoder("parquet")


def test_unknown_option_lists_allowed() -> None:
    with pytest.raises(ConfigError, match="snaplen.*keep_truncated"):
        get_decoder("pcap", snaplen=5)


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found.*nothing.csv"):
        list(read_file(tmp_path / "nothing.csv", "record-csv"))


def expected_read(payload: bytes, format: str) -> int:
    """Records read: non-blank lines, and for Zeek the lines that are not directives."""
    count = 0
    for raw_line in payload.removeprefix(b"\xef\xbb\xbf").split(b"\n"):
        raw_line = raw_line.removesuffix(b"\r")
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        if not line or line.isspace() or (format == "zeek-conn" and line.startswith("#")):
            continue
        count += 1
    return count


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=30), st.sampled_from(sorted(TEXT_DECODERS)))
def test_accepted_plus_rejected_equals_read(lines: list[bytes], format: str) -> None:
    payload = b"\n".join(lines)
    records, rejects = get_decoder(format, **TEXT_DECODERS[format]).decode_message(payload, Origin("fuzz"))
    assert len(records) + len(rejects) == expected_read(payload, format)
    assert all(rejected.reason in REASONS for rejected in rejects)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.,:-abTx\"\r ", max_size=60), max_size=30))
def test_invariant_on_near_valid_csv(lines: list[str]) -> None:
    payload = "\n".join(lines).encode()
    for format in ("record-csv", "darkvec-csv", "csv"):
        records, rejects = get_decoder(format, **TEXT_DECODERS[format]).decode_message(payload, Origin("fuzz"))
        assert len(records) + len(rejects) == expected_read(payload, format)


def corrupt_lines(lines: list[bytes], every: int) -> tuple[list[bytes], list[int]]:
    rng = random.Random(11)
    broken_numbers = []
    for index in range(every, len(lines), every):
        line = bytearray(lines[index])
        line[rng.randrange(len(line))] = rng.choice(b"\xff,x\"")
        lines[index] = bytes(line)
        broken_numbers.append(index + 1)
    return lines, broken_numbers


@pytest.mark.parametrize("source", ["marx", "darkvec"])
def test_broken_real_lines_are_rejected_in_place(tmp_path: Path, source: str) -> None:
    if source == "marx":
        path, format, options = need(MARX), "csv", {"preset": "marx-iptables"}
    else:
        if not DARKVEC_DAYS:
            pytest.skip("DarkVec sample not available")
        path, format, options = need(DARKVEC_DAYS[0]), "darkvec-csv", {}
    lines = gzip.decompress(path.read_bytes()).split(b"\n")[:3001]
    broken, broken_numbers = corrupt_lines(lines, every=7)
    target = tmp_path / "broken.csv.gz"
    target.write_bytes(gzip.compress(b"\n".join(broken)))
    items = list(read_file(target, format, **options))
    rejects = [item for item in items if isinstance(item, Rejected)]
    assert len(items) == expected_read(b"\n".join(broken[1:]), format)
    assert 0 < len(rejects) <= len(range(7, 3001, 7))
    for rejected in rejects:
        assert rejected.origin.line in broken_numbers
        assert rejected.raw == broken[rejected.origin.line - 1]
        assert rejected.origin.source == str(target)
    batched = sum(len(records) + len(rejects) for records, rejects in read_batches(target, format, **options))
    assert batched == len(items)


def test_read_file_order_interleaves_rejects(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"1,10.0.0.1,,,,,,,,,1,\nbad\n2,10.0.0.2,,,,,,,,,1,\n\xff\n3,10.0.0.3,,,,,,,,,1,\n")
    kinds = [type(item).__name__ for item in read_file(path, "record-csv")]
    assert kinds == ["Record", "Rejected", "Record", "Rejected", "Record"]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_bytes(b"datetime,host,src,proto,type,spt,dpt\r\n")
    assert list(read_file(empty, "record-csv")) == []
    assert list(read_file(header_only, "csv", preset="marx-iptables")) == []
