"""The ``clusters`` subcommand end to end on a vectors file, records and a label list."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from darkvec_stream.cli import main
from darkvec_stream.clusters.synthetic import nested_blobs
from darkvec_stream.ingest.record import Record
from darkvec_stream.ingest.wire import write_file
from darkvec_stream.labels import normalise_label
from darkvec_stream.labels.export import write_vectors


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    blobs = nested_blobs(group_sizes=((30,), (20,)), background=10, seed=9)
    # Give the first group real-looking addresses inside one /16.
    keys = [f"141.212.{i // 10}.{i % 10 + 1}" if group == "g0" else key
            for i, (key, group) in enumerate(zip(blobs.keys, blobs.groups))]
    vectors = tmp_path / "vectors.csv"
    write_vectors(vectors, keys, blobs.vectors, "csv")
    records = [Record(ts_ns=3_600_000_000_000 * (i % 3) + i, src=key, dst="198.51.100.1", dst_port=443 if
                      group == "g0" else 22, proto=6) for i, (key, group) in enumerate(zip(keys, blobs.groups))]
    records_path = tmp_path / "records.csv"
    write_file(records_path, sorted(records, key=lambda record: record.ts_ns))
    labels = tmp_path / "umich.csv"
    labels.write_text("ip,label\n141.212.0.1,engin-umich\n141.212.0.2,engin-umich\n", encoding="utf-8")
    return {"vectors": vectors, "records": records_path, "labels": labels, "out": tmp_path / "out"}


def test_clusters_command_writes_profiles(inputs, capsys):
    code = main(["clusters", "--vectors", str(inputs["vectors"]), "--records", str(inputs["records"]),
                 "--labels", str(inputs["labels"]), "--focus", "141.212.0.0/16", "--out", str(inputs["out"])])
    assert code == 0
    document = json.loads((inputs["out"] / "clusters.json").read_text())
    sizes = [cluster["size"] for cluster in document["clusters"]]
    assert sizes == [30, 20]
    umich = document["clusters"][0]
    assert umich["top_ports"][0][0] == 443
    assert umich["subnets_16"] == 1
    assert umich["top_subnets_16"] == [["141.212.0.0/16", 30]]
    assert umich["label_counts"] == {normalise_label("engin-umich"): 2, "unknown": 28}
    assert len(umich["packets_per_window"]) == 3
    assert document["focus"] == {"141.212.0.0/16": {"0": 30}}
    with (inputs["out"] / "senders.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert {row["label"] for row in rows if row["ip"] == "141.212.0.1"} == {normalise_label("engin-umich")}
    table = (inputs["out"] / "clusters.txt").read_text()
    assert "443" in table
    output = capsys.readouterr().out
    assert "141.212.0.0/16: 30 senders; cluster 0: 30" in output


def test_clusters_command_rejects_bad_focus(inputs, capsys):
    code = main(["clusters", "--vectors", str(inputs["vectors"]), "--focus", "not-a-prefix",
                 "--out", str(inputs["out"])])
    assert code == 1
    assert "not-a-prefix" in capsys.readouterr().err


def test_clusters_help_names_units(capsys):
    with pytest.raises(SystemExit):
        main(["clusters", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "in seconds" in text
    assert "in senders" in text
