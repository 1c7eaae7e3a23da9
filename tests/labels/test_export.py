"""Label and vector export files, and the evaluate and export commands end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from darkvec_stream.cli import main
from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.errors import InputError
from darkvec_stream.labels.book import LabelBook
from darkvec_stream.labels.export import (
    PARQUET_MIN_SENDERS,
    choose_vector_format,
    label_rows,
    read_vectors,
    write_labels_csv,
    write_vectors,
)
from darkvec_stream.labels.knn import LabelDecision
from darkvec_stream.labels.mirai import MiraiSource
from darkvec_stream.labels.sources import LabelSource
from darkvec_stream.labels.synthetic import make_embedding
from darkvec_stream.windows.model import ClosedWindow, SenderActivity, Sentence

HOUR_NS = 3_600_000_000_000


def test_label_rows_sources_and_order(tmp_path: Path) -> None:
    listed = tmp_path / "censys.txt"
    listed.write_text("192.0.2.0/24\n")
    mirai = MiraiSource()
    activity = {"198.51.100.9": SenderActivity(packets=1, last_ns=5, mirai_packets=1)}
    mirai.observe(ClosedWindow(0, 0, HOUR_NS, (), activity, 1, 1, 0))
    book = LabelBook([LabelSource("scanners", listed)], mirai=mirai)
    decisions = [
        LabelDecision("203.0.113.1", "shodan", 0.857, False, "voted", ()),
        LabelDecision("203.0.113.2", None, 0.5, True, "low_margin", ()),
        LabelDecision("192.0.2.1", "mirai", 1.0, False, "voted", ()),  # ground truth wins
    ]
    rows = label_rows(["192.0.2.1", "198.51.100.9", "203.0.113.1", "203.0.113.2"], book, decisions)
    assert [(row.ip, row.label, row.source) for row in rows] == [
        ("192.0.2.1", "censys", "scanners"),
        ("198.51.100.9", "mirai", "mirai-fingerprint"),
        ("203.0.113.1", "shodan", "knn"),
    ]
    path = tmp_path / "labels.csv"
    assert write_labels_csv(path, rows) == 3
    lines = path.read_text().splitlines()
    assert lines[0] == "ip,label,confidence,source"
    assert lines[3] == "203.0.113.1,shodan,0.8570,knn"


@pytest.mark.parametrize("vector_format", ["csv", "parquet"])
def test_vectors_round_trip_exactly(tmp_path: Path, vector_format: str) -> None:
    rng = np.random.default_rng(1)
    senders = ["192.0.2.1", "2001:db8::1", "src_ipaddr3"]
    vectors = rng.standard_normal((3, 5)).astype(np.float32)
    path = tmp_path / f"vectors.{vector_format}"
    assert write_vectors(path, senders, vectors, vector_format) == vector_format
    read_senders, read_matrix = read_vectors(path)
    assert read_senders == senders
    assert read_matrix.dtype == np.float32
    assert np.array_equal(read_matrix, vectors)


def test_parquet_schema(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    write_vectors(path, ["a", "b"], np.ones((2, 4)), "parquet")
    schema = pq.read_schema(path)
    assert schema.names == ["ip", "vector"]
    vector_type = schema.field("vector").type
    assert pa.types.is_fixed_size_list(vector_type)
    assert vector_type.list_size == 4
    assert vector_type.value_type == pa.float32()


def test_csv_header_names_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    write_vectors(path, ["a"], np.zeros((1, 3)), "csv")
    assert path.read_text().splitlines()[0] == "ip,v0,v1,v2"


def test_default_format_by_size() -> None:
    assert choose_vector_format(10) == "csv"
    assert choose_vector_format(PARQUET_MIN_SENDERS) == "parquet"
    assert choose_vector_format(10, "parquet") == "parquet"
    with pytest.raises(InputError, match="vector format 'npy'"):
        choose_vector_format(10, "npy")


def test_bad_vector_files_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sender,x\n")
    with pytest.raises(InputError, match="header must be ip"):
        read_vectors(bad)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("ip,v0,v1\na,1,2\nb,1\n")
    with pytest.raises(InputError, match="line 3"):
        read_vectors(ragged)
    with pytest.raises(InputError, match="cannot read"):
        read_vectors(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="pair one to one"):
        write_vectors(tmp_path / "x.csv", ["a"], np.zeros((2, 3)))


def tiny_state(directory: Path) -> dict[str, str]:
    """Train a real embedding on two groups that always arrive together; return ground truth."""
    censys = [f"192.0.2.{i}" for i in range(1, 7)]
    shodan = [f"198.51.100.{i}" for i in range(1, 7)]
    embedding = SenderEmbedding(vector_size=16, context=3, epochs_per_window=30, seed=3)
    for index in range(4):
        sentences = tuple(Sentence(f"service{n}", tuple(group * 4)) for n, group in enumerate((censys, shodan)))
        embedding.update(ClosedWindow(index, index * HOUR_NS, (index + 1) * HOUR_NS, sentences, {}, 48, 12, 0))
    embedding.save(directory)
    return {sender: "censys" for sender in censys[:4]} | {sender: "shodan" for sender in shodan[:4]}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("state")
    truth = tiny_state(folder / "embedding")
    labels = folder / "gt.csv"
    labels.write_text("ip,label\n" + "".join(f"{ip},{label}\n" for ip, label in truth.items()))
    return folder / "embedding", labels


def test_evaluate_command_on_saved_state(state: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory, labels = state
    out = tmp_path / "report.json"
    code = main(["evaluate", "--state", str(directory), "--labels", str(labels), "--k", "3",
                 "--min-similarity", "0", "--min-margin", "0", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Without unknown" in printed
    document = json.loads(out.read_text())
    assert document["labelled"] == 8
    assert document["senders"] == 12
    assert document["without_unknown"]["macro_f1"] == 1.0
    assert (tmp_path / "report.txt").read_text() == printed


def test_export_commands_on_saved_state(state: tuple[Path, Path], tmp_path: Path) -> None:
    directory, labels = state
    vectors = tmp_path / "vectors.parquet"
    assert main(["export", "vectors", "--state", str(directory), "--out", str(vectors), "--vector-format", "parquet"]) == 0
    senders, matrix = read_vectors(vectors)
    assert len(senders) == 12
    assert matrix.shape == (12, 16)
    out = tmp_path / "labels.csv"
    assert main(["export", "labels", "--vectors", str(vectors), "--labels", str(labels), "--k", "3",
                 "--min-similarity", "0", "--min-margin", "0", "--out", str(out)]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    by_ip = {row["ip"]: row for row in rows}
    assert by_ip["192.0.2.1"]["source"] == "gt"
    assert by_ip["192.0.2.5"] == {"ip": "192.0.2.5", "label": "censys", "confidence": "1.0000", "source": "knn"}
    assert by_ip["198.51.100.6"]["label"] == "shodan"


def test_evaluate_command_vectors_file_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = make_embedding(classes=3, largest_class=20, smallest_class=10, seed=2)
    vectors = tmp_path / "v.csv"
    write_vectors(vectors, data.senders, data.vectors, "csv")
    labels = tmp_path / "gt.csv"
    labels.write_text("ip,label\n" + "".join(f"{ip},{label}\n" for ip, label in data.ground_truth.items()))
    assert main(["evaluate", "--vectors", str(vectors), "--labels", str(labels), "--vote", "darkvec-compat",
                 "--no-unknown", "--sweep"]) == 0
    assert "Threshold sweep" in capsys.readouterr().out
    assert main(["evaluate", "--vectors", str(vectors)]) == 1
    assert "no label sources" in capsys.readouterr().err
    assert main(["evaluate", "--state", str(tmp_path), "--labels", str(labels)]) == 1
    assert "no saved embedding" in capsys.readouterr().err
