"""Every real scanner list in the shared data folder loads, with the documented counts.

The expected figures are the ones stated in the data folder's README and
SOURCE.md files. The lists are read in place and nothing derived from them
is written into the repository.
"""

from __future__ import annotations

import json

import pytest

from darkvec_stream.labels.book import LabelBook
from darkvec_stream.labels.sources import LabelSource, load_source
from tests.shared_data import LABEL_DATA

pytestmark = pytest.mark.skipif(not LABEL_DATA.is_dir(), reason=f"shared label lists not found at {LABEL_DATA}")


def load(name: str, relative: str, **options: object):  # type: ignore[no-untyped-def]
    return load_source(LabelSource(name=name, path=LABEL_DATA / relative, **options))  # type: ignore[arg-type]


def test_darkvec_ground_truth() -> None:
    loaded = load("darkvec-gt", "darkvec-gt/big_gt.csv")
    assert loaded.stats.entries == 10_164
    assert loaded.stats.distinct == 9_125
    assert loaded.stats.duplicates == 1_039
    assert loaded.stats.conflicts == 0
    assert len(set(loaded.networks.values())) == 35


def test_darkvec_demo_ground_truth_gzip() -> None:
    loaded = load("darkvec-demo", "darkvec-demo-gt/ground_truth.csv.gz")
    assert loaded.stats.distinct == 22_980
    labels = list(loaded.networks.values())
    assert labels.count("mirai") == 20_934
    assert labels.count("u_mich") == 50


def test_openfilters_cidr_lists() -> None:
    loaded = load("openfilters", "openfilters-internet-scanners/cidr")
    assert loaded.stats.files == 85
    versions = [key.version for key in loaded.networks]
    assert loaded.stats.entries == 18_544 + 3_544
    assert versions.count(6) > 0
    assert "stretchoid" in set(loaded.networks.values())  # from the misspelt strechoid_v4.txt
    inactive = load("openfilters-inactive", "openfilters-internet-scanners/inactive/cidr")
    assert inactive.stats.files == 3


def test_misp_warning_lists() -> None:
    loaded = load("misp", "misp-warninglists-scanning")
    assert loaded.stats.files == 33
    assert loaded.stats.entries == 4_019
    assert {"censys", "shodan", "stretchoid", "onyphe"} <= set(loaded.networks.values())


def test_xorlent_lists() -> None:
    per_organisation = load("xorlent", "xorlent-internet-scanners")
    assert per_organisation.stats.files == 48
    assert "u_mich" in set(per_organisation.networks.values())
    union = load("xorlent-all", "xorlent-internet-scanners/_ALL.txt", label="scanner")
    assert union.stats.entries == 12_906


def test_maltrail_lists_with_comment_labels() -> None:
    hosts = load("maltrail", "maltrail-mass-scanner/mass_scanner.txt", label="mass_scanner", label_from_comment=True)
    # 19,223 non-empty lines: 19,215 addresses, 5 invalid lines, 3 lines of spaces.
    assert hosts.stats.entries + hosts.stats.invalid == 19_220
    assert hosts.stats.invalid == 5
    labels = list(hosts.networks.values())
    assert labels.count("u_mich") == 744
    assert labels.count("censys") == 2_542
    ranges = load("maltrail-cidr", "maltrail-mass-scanner/mass_scanner_cidr.txt", label="mass_scanner", label_from_comment=True)
    assert ranges.stats.entries == 1_106  # the README rounds this file to "1,097 /24s"


def test_nict_survey_scanner_periods() -> None:
    folder = LABEL_DATA / "nict-survey-scanner/surveyscanner"
    expected = {"2023": 11_186, "2024": 15_000, "2025": 17_348, "2026_1Q": 14_889}
    for period, count in expected.items():
        loaded = load(f"nict-{period}", f"nict-survey-scanner/surveyscanner/surveyscanner_{period}.json")
        assert loaded.stats.distinct == count
    assert len(list(folder.glob("*.json"))) == 12


def test_nict_scanorg_matches_survey_organisations() -> None:
    organisations = load("scanorg-2025", "nict-survey-scanner/scanorg/scanorg_2025.csv")
    survey = json.loads((LABEL_DATA / "nict-survey-scanner/surveyscanner/surveyscanner_2025.json").read_text())
    assert organisations.stats.organisations == len({row["scanner"].strip() for row in survey}) == 87


def test_scannergrouper_lists() -> None:
    first = load("sg24", "scannergrouper-labels/SelfDeploy24.csv")
    assert first.stats.distinct == 4_182
    assert first.stats.unlabelled == 29_205
    second = load("sg25", "scannergrouper-labels/SelfDeploy25.csv")
    assert second.stats.distinct == 5_373
    assert second.stats.entries + second.stats.unlabelled == 88_383


def test_all_lists_in_one_book() -> None:
    sources = [
        LabelSource("darkvec-gt", LABEL_DATA / "darkvec-gt/big_gt.csv", priority=10),
        LabelSource("darkvec-demo", LABEL_DATA / "darkvec-demo-gt/ground_truth.csv.gz", priority=10),
        LabelSource("openfilters", LABEL_DATA / "openfilters-internet-scanners/cidr"),
        LabelSource("misp", LABEL_DATA / "misp-warninglists-scanning"),
        LabelSource("xorlent", LABEL_DATA / "xorlent-internet-scanners"),
        LabelSource("maltrail", LABEL_DATA / "maltrail-mass-scanner", label="mass_scanner", label_from_comment=True, priority=-1),
        LabelSource("nict", LABEL_DATA / "nict-survey-scanner/surveyscanner"),
        LabelSource("nict-orgs", LABEL_DATA / "nict-survey-scanner/scanorg"),
        LabelSource("sg", LABEL_DATA / "scannergrouper-labels"),
    ]
    book = LabelBook(sources)
    assert len(book) > 90_000
    assert book.stats.exact_conflicts > 0
    assert book.label_of("141.212.121.5") == "u_mich"
    assert book.label_of("162.142.125.9") == "censys"
    assert book.label_of("2602:80d:1000::1") == "censys"
    assert "censys" in book.organisations()
    assert set(book.versions()) == {source.name for source in sources}
