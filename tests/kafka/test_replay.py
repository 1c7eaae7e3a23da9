"""Replay: event-time order across files, batching, partitioning, pacing, summary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.ingest import get_decoder
from darkvec_stream.ingest.record import Origin, Record
from darkvec_stream.ingest.wire import HEADER, write_file
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.replay import Pacer, ReplaySummary, ordered_records, replay
from darkvec_stream.kafka.testing import KafkaIO, Message

NS = 1_000_000_000
BASE_NS = 1_700_000_000 * NS


def _record(offset_s: float, src: str, dst_port: int = 23) -> Record:
    return Record(ts_ns=BASE_NS + int(offset_s * NS), src=src, dst="192.0.2.1", dst_port=dst_port, proto=6)


def _decode(messages: list[Message]) -> list[Record]:
    decoder = get_decoder("record-csv")
    records: list[Record] = []
    for topic, partition, offset, value in messages:
        decoded, rejects = decoder.decode_message(value, Origin(topic, partition, offset))
        assert rejects == []
        records.extend(decoded)
    return records


def _write(path: Path, records: list[Record]) -> Path:
    write_file(path, records)
    return path


def test_ordered_records_merges_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.csv", [_record(0, "10.0.0.1"), _record(2, "10.0.0.2"), _record(4, "10.0.0.3")])
    second = _write(tmp_path / "b.csv", [_record(3, "10.0.0.4"), _record(1, "10.0.0.5"), _record(2, "10.0.0.6")])
    summary = ReplaySummary()

    merged = list(ordered_records([first, second], "record-csv", summary=summary))

    assert [record.src for record in merged] == [
        "10.0.0.1", "10.0.0.5", "10.0.0.2", "10.0.0.6", "10.0.0.4", "10.0.0.3",
    ]
    assert summary.sorted_in_memory == [str(second)]


def test_ordered_records_counts_rejects(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    good = _record(0, "10.0.0.1")
    path.write_text(
        f"{HEADER}\n"
        f"{good.ts_ns},10.0.0.1,192.0.2.1,,23,6,,,,,1,\n"
        "not-a-time,10.0.0.1,192.0.2.1,,23,6,,,,,1,\n"
        f"{good.ts_ns + 1},10.0.0.2,192.0.2.1,,99999,6,,,,,1,\n"
    )
    summary = ReplaySummary()
    rejected = []

    merged = list(ordered_records([path], "record-csv", summary=summary, on_reject=rejected.append))

    assert [record.src for record in merged] == ["10.0.0.1"]
    assert summary.rejects == {"bad_timestamp": 1, "bad_port": 1}
    assert len(rejected) == 2


def test_pacer_rejects_both_modes() -> None:
    with pytest.raises(ConfigError, match="exclude each other"):
        Pacer(speedup=2.0, max_rate=10.0)
    with pytest.raises(ConfigError, match="--speedup 0"):
        Pacer(speedup=0)
    with pytest.raises(ConfigError, match="--max-rate -5"):
        Pacer(max_rate=-5)


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=50), st.floats(0.01, 1e6))
def test_pacer_speedup_follows_event_time(offsets_ns: list[int], speedup: float) -> None:
    offsets_ns.sort()
    pacer = Pacer(speedup=speedup, clock=lambda: 100.0)

    due = [pacer.due_s(Record(ts_ns=BASE_NS + offset, src="10.0.0.1")) for offset in offsets_ns]

    assert due == sorted(due)
    for offset, due_s in zip(offsets_ns, due):
        assert due_s == pytest.approx(100.0 + (offset - offsets_ns[0]) / NS / speedup)


@given(st.integers(min_value=1, max_value=200), st.floats(0.5, 1e6))
def test_pacer_max_rate_spaces_records(count: int, max_rate: float) -> None:
    pacer = Pacer(max_rate=max_rate, clock=lambda: 7.0)

    due = [pacer.due_s(_record(0, "10.0.0.1")) for _ in range(count)]

    assert due[0] == 7.0
    assert due[-1] == pytest.approx(7.0 + (count - 1) / max_rate)


def test_replay_missing_file(kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not found"):
        replay([tmp_path / "absent.csv"], "topic", kafka_broker.bootstrap_servers)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"batch_records": 0}, "--batch-records 0"), ({"partitioning": "random"}, "--partitioning 'random'"),
     ({"partition": -1}, "--partition -1")],
)
def test_replay_invalid_settings(tmp_path: Path, settings: dict, message: str) -> None:
    path = _write(tmp_path / "a.csv", [_record(0, "10.0.0.1")])
    with pytest.raises(ConfigError, match=message):
        replay([path], "topic", "127.0.0.1:9", **settings)


@pytest.mark.broker
def test_replay_sends_in_event_time_order(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, tmp_path: Path
) -> None:
    first = _write(tmp_path / "a.csv", [_record(second, f"10.0.1.{second}") for second in range(0, 30, 2)])
    second = _write(tmp_path / "b.csv", [_record(second, f"10.0.2.{second}") for second in range(29, 0, -2)])

    summary = replay([first, second], unique_topic, kafka_broker.bootstrap_servers, batch_records=4)
    messages = kafka_io.consume(unique_topic, 8)
    records = _decode(messages)

    assert [record.ts_ns for record in records] == [BASE_NS + second * NS for second in range(30)]
    assert {message[1] for message in messages} == {0}
    assert [len(message[3].split(b"\n")) for message in messages] == [4] * 7 + [2]
    assert summary.records == 30
    assert summary.messages == 8
    assert summary.first_ts_ns == BASE_NS
    assert summary.last_ts_ns == BASE_NS + 29 * NS
    assert summary.sorted_in_memory == [str(second)]


@pytest.mark.broker
def test_replay_source_hash_partitioning(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, tmp_path: Path
) -> None:
    senders = [f"10.0.0.{number}" for number in range(12)]
    path = _write(tmp_path / "a.csv", [_record(second, senders[second % 12]) for second in range(120)])

    summary = replay([path], unique_topic, kafka_broker.bootstrap_servers, batch_records=5, partitioning="source-hash")
    messages = kafka_io.consume(unique_topic, summary.messages)

    partition_of_sender: dict[str, set[int]] = {}
    by_partition: dict[int, list[Record]] = {}
    for message in messages:
        for record in _decode([message]):
            partition_of_sender.setdefault(record.src, set()).add(message[1])
            by_partition.setdefault(message[1], []).append(record)
    assert sum(len(records) for records in by_partition.values()) == 120
    assert all(len(partitions) == 1 for partitions in partition_of_sender.values())
    assert len(by_partition) > 1
    for records in by_partition.values():
        assert [record.ts_ns for record in records] == sorted(record.ts_ns for record in records)


@pytest.mark.broker
def test_replay_speedup_paces_sending(
    kafka_broker: EmbeddedBroker, unique_topic: str, kafka_io: KafkaIO, tmp_path: Path
) -> None:
    path = _write(tmp_path / "a.csv", [_record(second / 5, "10.0.0.1") for second in range(11)])

    started = time.monotonic()
    summary = replay([path], unique_topic, kafka_broker.bootstrap_servers, speedup=4.0, batch_records=100)
    elapsed_s = time.monotonic() - started
    messages = kafka_io.consume(unique_topic, summary.messages)

    # 2 s of event time at 4x: 0.5 s of pacing, plus producer start-up.
    assert summary.records == 11
    assert 0.5 <= elapsed_s < 3.0
    # Each record waits for its own due time, so a batch of 100 never fills:
    # every record goes out in its own message.
    assert summary.messages == 11
    assert [len(_decode([message])) for message in messages] == [1] * 11


@pytest.mark.broker
def test_replay_max_rate_limits_speed(kafka_broker: EmbeddedBroker, unique_topic: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", [_record(0, f"10.0.0.{number}") for number in range(21)])

    started = time.monotonic()
    summary = replay([path], unique_topic, kafka_broker.bootstrap_servers, max_rate=40.0, batch_records=1000)
    elapsed_s = time.monotonic() - started

    assert summary.records == 21
    assert 0.5 <= elapsed_s < 3.0


def test_summary_render_lists_everything() -> None:
    summary = ReplaySummary(records=3, messages=1, first_ts_ns=BASE_NS, last_ts_ns=BASE_NS + 90 * NS, wall_s=2.0)
    summary.rejects.update({"bad_port": 2, "malformed": 1})

    text = summary.render()

    assert "records sent: 3 in 1 messages" in text
    assert "rejects: 3 (bad_port=2, malformed=1)" in text
    assert "event time: 2023-11-14T22:13:20Z .. 2023-11-14T22:14:50Z (90.0 s)" in text
    assert "wall time: 2.00 s (2 records/s)" in text
