"""Each label source format, format detection, label normalisation and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError, InputError
from darkvec_stream.labels.addresses import NetworkKey, format_network, parse_network
from darkvec_stream.labels.normalise import label_from_file_name, label_from_host, label_from_misp_name, normalise_label
from darkvec_stream.labels.sources import LabelSource, detect_format, load_source


def networks_of(path: Path, **options: object) -> dict[str, str]:
    loaded = load_source(LabelSource(name="test", path=path, **options))  # type: ignore[arg-type]
    return {format_network(key): label for key, label in loaded.networks.items()}


@pytest.mark.parametrize("header", ["ip,label", "ip,class", "IP,Label", " Ip , CLASS "])
def test_csv_header_variants(tmp_path: Path, header: str) -> None:
    path = tmp_path / "gt.csv"
    path.write_text(f"{header}\n192.0.2.1,Censys\n192.0.2.2,u_mich\n")
    assert networks_of(path) == {"192.0.2.1": "censys", "192.0.2.2": "u_mich"}


def test_csv_skips_unknown_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "sd.csv"
    path.write_text("IP,Label\n192.0.2.1,unknown\n192.0.2.2,shodan\n192.0.2.2,shodan\n192.0.2.3,UNKNOWN\n")
    loaded = load_source(LabelSource("sd", path))
    assert {format_network(k): v for k, v in loaded.networks.items()} == {"192.0.2.2": "shodan"}
    assert loaded.stats.unlabelled == 2
    assert loaded.stats.entries == 2
    assert loaded.stats.duplicates == 1
    assert loaded.stats.distinct == 1


def test_csv_gzip_detected_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.data"  # no .gz suffix on purpose
    path.write_bytes(gzip.compress(b"ip,label\n198.51.100.9,mirai\n"))
    assert networks_of(path) == {"198.51.100.9": "mirai"}


def test_csv_conflict_inside_source_keeps_first(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("ip,class\n192.0.2.1,censys\n192.0.2.1,shodan\n")
    loaded = load_source(LabelSource("gt", path))
    assert list(loaded.networks.values()) == ["censys"]
    assert loaded.stats.conflicts == 1


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("192.0.2.1,censys\n192.0.2.0/24,shodan\n")
    assert networks_of(path) == {"192.0.2.1": "censys", "192.0.2.0/24": "shodan"}


def test_csv_named_columns_and_fixed_label(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text("seen,host,owner\n2021,192.0.2.1,acme\n")
    assert networks_of(path, ip_column="host", label_column="owner") == {"192.0.2.1": "acme"}
    assert networks_of(path, ip_column="host", label="Scanner") == {"192.0.2.1": "scanner"}


def test_csv_without_ip_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("host,label\nexample.org,censys\n")
    with pytest.raises(InputError, match="no IP column.*ip_column"):
        load_source(LabelSource("bad", path))


def test_list_comments_cidr_ipv6_and_file_label(tmp_path: Path) -> None:
    path = tmp_path / "censys_v4.txt"
    path.write_text(
        "# Censys scanning ranges\n"
        "\n"
        "162.142.125.0/24   # main range\n"
        "167.94.138.7 # one host\n"
        "2602:80d:1000::/48\n"
        "2602:80D:1000:0:0:0:0:1\n"
    )
    assert networks_of(path) == {
        "162.142.125.0/24": "censys",
        "167.94.138.7": "censys",
        "2602:80d:1000::/48": "censys",
        "2602:80d:1000::1": "censys",
    }


def test_list_invalid_lines_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "shodan.txt"
    path.write_text("198.51.100.1\nnot-an-address\n300.1.1.1\n")
    loaded = load_source(LabelSource("shodan", path))
    assert loaded.stats.invalid == 2
    assert loaded.stats.distinct == 1


def test_list_of_only_garbage_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garbage.txt"
    path.write_text("300.1.1.1\n999.0.0.0/8\n")
    with pytest.raises(InputError, match="no valid entry"):
        load_source(LabelSource("garbage", path, format="list"))


def test_list_label_from_comment(tmp_path: Path) -> None:
    path = tmp_path / "mass_scanner.txt"
    path.write_text(
        "141.212.121.5 # researchscan1.eecs.umich.edu\n"
        "198.51.100.2 # 198.51.100.2\n"
        "198.51.100.3 # binaryedge.ninja\n"
        "198.51.100.4\n"
    )
    assert networks_of(path, label_from_comment=True, label="mass-scanner") == {
        "141.212.121.5": "u_mich",
        "198.51.100.2": "mass_scanner",
        "198.51.100.3": "binaryedge",
        "198.51.100.4": "mass_scanner",
    }


def test_host_bits_in_cidr_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("192.0.2.77/24\n")
    assert networks_of(path, label="x") == {"192.0.2.0/24": "x"}


def test_misp_warning_list(tmp_path: Path) -> None:
    path = tmp_path / "shodan-scanning.json"
    document = {
        "name": "Shodan IP-Ranges, pot. used for Scanning",
        "type": "cidr",
        "list": ["198.20.69.0/24", "2604:a880:1:20::/64", "198.20.69.0/24"],
    }
    path.write_text(json.dumps(document))
    loaded = load_source(LabelSource("misp", path))
    assert {format_network(k): v for k, v in loaded.networks.items()} == {
        "198.20.69.0/24": "shodan",
        "2604:a880:1:20::/64": "shodan",
    }
    assert loaded.stats.duplicates == 1


def test_misp_string_list_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "domains.json"
    path.write_text(json.dumps({"name": "Domains", "type": "hostname", "list": ["example.org"]}))
    with pytest.raises(InputError, match="only 'cidr' lists"):
        load_source(LabelSource("domains", path))


def test_broken_json_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", "list": [')
    with pytest.raises(InputError, match="not valid JSON"):
        load_source(LabelSource("broken", path))


def test_nict_survey_scanner_json(tmp_path: Path) -> None:
    path = tmp_path / "surveyscanner_2025.json"
    rows = [
        {"ip": "192.0.2.1", "scanner": "Limes Security (Alpha Strike Labs)", "last_seen": "2025-01-01"},
        {"ip": "192.0.2.2", "scanner": "University of Michigan", "last_seen": "2025-01-02"},
        {"ip": "192.0.2.3", "scanner": "Shodan ", "last_seen": "2025-01-02"},
    ]
    path.write_text(json.dumps(rows))
    assert networks_of(path) == {"192.0.2.1": "alphastrike", "192.0.2.2": "u_mich", "192.0.2.3": "shodan"}


def test_nict_scanorg_table_lists_organisations(tmp_path: Path) -> None:
    path = tmp_path / "scanorg_2025.csv"
    path.write_text(
        "scanner name,type,TCP port count,UDP port count,observed days,reference\n"
        "Censys,Threat Intelligence service,65535,65535,365,https://censys.example\n"
        "Stretchoid, - ,306,64,316,https://stretchoid.example\n"
    )
    loaded = load_source(LabelSource("orgs", path))
    assert loaded.networks == {}
    assert loaded.organisations["censys"]["type"] == "Threat Intelligence service"
    assert set(loaded.organisations) == {"censys", "stretchoid"}


def test_directory_source_skips_aggregates(tmp_path: Path) -> None:
    (tmp_path / "shodan.txt").write_text("198.51.100.1\n")
    (tmp_path / "censys.txt").write_text("198.51.100.2\n")
    (tmp_path / "_ALL.txt").write_text("198.51.100.1\n198.51.100.2\n198.51.100.3\n")
    (tmp_path / "SOURCE.md").write_text("# notes\n")
    loaded = load_source(LabelSource("dir", tmp_path))
    assert {format_network(k): v for k, v in loaded.networks.items()} == {
        "198.51.100.1": "shodan",
        "198.51.100.2": "censys",
    }
    assert loaded.stats.files == 2


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_source(LabelSource("missing", tmp_path / "nope.txt"))


def test_source_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format 'yaml' is invalid"):
        LabelSource("x", tmp_path, format="yaml")
    with pytest.raises(ConfigError, match="means 'no label'"):
        LabelSource("x", tmp_path, label="unknown")
    with pytest.raises(ConfigError, match="unknown keys"):
        LabelSource.from_mapping({"path": "x.txt", "colour": "red"})
    with pytest.raises(ConfigError, match="priority"):
        LabelSource.from_mapping({"path": "x.txt", "priority": "high"})


def test_source_from_mapping_defaults(tmp_path: Path) -> None:
    source = LabelSource.from_mapping({"path": str(tmp_path / "censys_v4.txt"), "priority": 5})
    assert source.name == "censys_v4"
    assert source.priority == 5
    assert source.format == "auto"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"list": []}', "misp"),
        ('[{"ip": "192.0.2.1"}]', "nict"),
        ("ip,label\n", "csv"),
        ("scanner name,type\n", "nict-scanorg"),
        ("# comment\n192.0.2.0/24 # x\n", "list"),
    ],
)
def test_detect_format(text: str, expected: str) -> None:
    assert detect_format(text, Path("x")) == expected


def test_detect_format_rejects_prose() -> None:
    with pytest.raises(InputError, match="set 'format'"):
        detect_format("hello world\n", Path("notes.txt"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("u_mich", "u_mich"),
        ("engin-umich", "u_mich"),
        ("UMICH", "u_mich"),
        ("Internet Census", "internetcensus"),
        ("internet_census", "internetcensus"),
        ("unknown", None),
        (" ", None),
        ("Rapid7 (Project Sonar)", "rapid7"),
    ],
)
def test_normalise_label_aliases(raw: str, expected: str | None) -> None:
    assert normalise_label(raw) == expected


def test_label_helpers() -> None:
    assert label_from_file_name(Path("strechoid_v4.txt")) == "stretchoid"
    assert label_from_file_name(Path("shodan-nt-scanning.json")) == "shodan"
    assert label_from_misp_name("List of published IP address ranges for Onyphe Scanner") == "onyphe"
    assert label_from_misp_name("Research scanner IP Ranges Used for Scanning") == "research_scanner"
    assert label_from_host("scanners.labs.rapid7.com") == "rapid7"
    assert label_from_host("192.0.2.5") is None
    assert label_from_host("(unknown)") is None


def test_parse_network_forms() -> None:
    assert parse_network("192.0.2.1") == NetworkKey(4, 32, 0xC0000201)
    assert parse_network("192.0.2.0/24") == NetworkKey(4, 24, 0xC00002)
    assert parse_network("::ffff:192.0.2.1") == NetworkKey(4, 32, 0xC0000201)
    assert parse_network("::ffff:192.0.2.0/120") == NetworkKey(4, 24, 0xC00002)
    assert parse_network("2001:db8::/32").version == 6
    with pytest.raises(ValueError):
        parse_network("src_ipaddr3")


def test_too_broad_prefixes_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "censys.txt"
    path.write_text("0.0.0.0/0\n10.0.0.0/7\n10.0.0.0/8\n::/0\n2001::/15\n2001:db8::/16\n192.0.2.1\n")

    loaded = load_source(LabelSource("censys", path))

    assert {format_network(key) for key in loaded.networks} == {"10.0.0.0/8", "2001::/16", "192.0.2.1"}
    assert loaded.stats.too_broad == 4
    assert loaded.stats.entries == 3
    assert "'0.0.0.0/0' at " + str(path) + ":1" in caplog.text
    assert "broader than min_prefix_v4 /8" in caplog.text
    assert "broader than min_prefix_v6 /16" in caplog.text


def test_min_prefix_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "censys.txt"
    path.write_text("0.0.0.0/0\n10.0.0.0/16\n10.1.0.0/24\n2001:db8::/32\n")

    source = LabelSource.from_mapping({"path": str(path), "min_prefix_v4": 20, "min_prefix_v6": 48})
    loaded = load_source(source)

    assert {format_network(key) for key in loaded.networks} == {"10.1.0.0/24"}
    assert loaded.stats.too_broad == 3
    assert networks_of(path, min_prefix_v4=0) == {"0.0.0.0/0": "censys", "10.0.0.0/16": "censys",
                                                 "10.1.0.0/24": "censys", "2001:db8::/32": "censys"}


@pytest.mark.parametrize(("key", "value"), [("min_prefix_v4", 33), ("min_prefix_v4", -1),
                                            ("min_prefix_v6", 129), ("min_prefix_v6", "16")])
def test_min_prefix_is_validated(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"{key} .* is invalid"):
        LabelSource.from_mapping({"path": "x.txt", key: value})
