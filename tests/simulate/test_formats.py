"""Every written format reads back through the ingest decoders, record for record."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from darkvec_stream.ingest import read_file
from darkvec_stream.ingest.record import PROTO_TCP, Record, Rejected
from darkvec_stream.ingest.wire import encode_records
from darkvec_stream.simulate import OUTPUT_FORMATS, Simulation, SimulationConfig, simulate_records, write_simulation
from darkvec_stream.simulate.run import simulate_messages
from darkvec_stream.simulate.writers import encode_batch

CONFIG = SimulationConfig(days=0.25, scale=0.01, seed=5)
DECODER_OPTIONS = {"jsonl": {"preset": "goflow2"}, "csv": {"preset": "marx-iptables"}}
# Fields each format cannot carry, and so cannot give back.
NOT_CARRIED = {
    "record-csv": set(),
    "pcap": set(),
    "darkvec-csv": {"length", "mirai"},
    "jsonl": {"tcp_seq"},
    "zeek-conn": {"tcp_flags", "ttl", "tcp_seq"},
    "csv": {"ts_ns", "length", "tcp_flags", "ttl", "tcp_seq"},
}


@pytest.fixture(scope="module")
def expected() -> list[Record]:
    return list(simulate_records(CONFIG))


def _read_back(paths: tuple[Path, ...], format_name: str) -> tuple[list[Record], list[Rejected]]:
    records: list[Record] = []
    rejects: list[Rejected] = []
    for path in paths:
        for item in read_file(path, format_name, **DECODER_OPTIONS.get(format_name, {})):
            (rejects if isinstance(item, Rejected) else records).append(item)
    return records, rejects


@pytest.mark.parametrize("format_name", OUTPUT_FORMATS)
@pytest.mark.parametrize("compress", [False, True])
def test_format_reads_back(tmp_path: Path, expected: list[Record], format_name: str, compress: bool) -> None:
    result = write_simulation(CONFIG, tmp_path, format_name, compress=compress)
    assert all(path.name.endswith(".gz") == compress for path in result.traffic_files)
    records, rejects = _read_back(result.traffic_files, format_name)
    assert rejects == []
    assert len(records) == result.records == len(expected)
    compared = [name for name in Record._fields if name not in NOT_CARRIED[format_name]]
    for written, read in zip(expected, records):
        assert [getattr(read, name) for name in compared] == [getattr(written, name) for name in compared]


def test_darkvec_csv_frame_length_and_flag(tmp_path: Path, expected: list[Record]) -> None:
    result = write_simulation(CONFIG, tmp_path, "darkvec-csv")
    records, _ = _read_back(result.traffic_files, "darkvec-csv")
    for written, read in zip(expected, records):
        assert read.length == max(60, (written.length or 0) + 14)
        if written.proto == PROTO_TCP:
            assert read.mirai == (written.tcp_seq == int.from_bytes(bytes(map(int, written.dst.split("."))), "big"))
        else:
            assert read.mirai is None


def test_record_csv_matches_wire_encoder() -> None:
    """The columnar writer produces exactly what the ingest wire encoder produces."""
    for batch in Simulation(CONFIG).batches():
        assert encode_batch(batch, "record-csv") == encode_records(batch.records()) + b"\n"


def test_messages_hold_bounded_batches() -> None:
    messages = list(simulate_messages(CONFIG, records_per_message=300))
    lines = [line for message in messages for line in message.split(b"\n")]
    assert max(message.count(b"\n") + 1 for message in messages) == 300
    assert lines == [encode_records([record]) for record in simulate_records(CONFIG)]


def test_pcap_checksums_valid(tmp_path: Path) -> None:
    result = write_simulation(CONFIG, tmp_path, "pcap")
    with open(result.traffic_files[0], "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        checked = 0
        for _, frame in reader:
            packet = dpkt.ethernet.Ethernet(frame).data
            raw = bytes(frame[14:14 + packet.len])
            assert dpkt.in_cksum(raw[:20]) == 0
            transport = raw[20:]
            if packet.p == 1:
                assert dpkt.in_cksum(transport) == 0
            else:
                pseudo = packet.src + packet.dst + bytes([0, packet.p]) + len(transport).to_bytes(2, "big")
                assert dpkt.in_cksum(pseudo + transport) == 0
            checked += 1
    assert checked == result.records
