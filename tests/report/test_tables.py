"""Cluster inspection rows and the label evaluation, checked against the state they come from."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darkvec_stream.clusters.profile import NOT_AN_ADDRESS, subnet_of
from darkvec_stream.embedding import SenderEmbedding
from darkvec_stream.labels.knn import KnnLabeller
from darkvec_stream.query.history import SenderHistory
from darkvec_stream.query.journal import ClusterJournal
from darkvec_stream.query.state import AnalystState, SenderLabelView
from darkvec_stream.report.tables import (
    LabelCount,
    cluster_rows,
    describe,
    evaluation_table,
    format_duration,
    format_share,
    ground_truth_labels,
    label_mix_of,
)
from tests.report.conftest import HOSTILE_CLUSTER, TELNET_CLUSTER, build_hand_state


def test_hand_state_telnet_row_values(hand_state: AnalystState) -> None:
    rows = {row.cluster_id: row for row in cluster_rows(hand_state)}
    row = rows[TELNET_CLUSTER]
    assert row.senders == 4
    assert row.ports == 2
    assert row.top_ports == ((23, 80), (2323, 40))
    assert row.top_services == (("telnet", 8),)
    assert row.silhouette == pytest.approx(0.7)
    assert row.subnets_24 == 2
    assert row.largest_subnet_24 == ("10.0.0.0/24", 3)
    assert dict(row.label_mix) == {"mirai": LabelCount(ground_truth=1, inferred=1)}
    assert row.unlabelled == 2
    assert row.mirai_senders == 1
    assert row.packets == 120
    assert (row.active_windows, row.windows, row.window_s) == (2, 4, 3600)


def test_hand_state_telnet_description(hand_state: AnalystState) -> None:
    row = {row.cluster_id: row for row in cluster_rows(hand_state)}[TELNET_CLUSTER]
    assert row.description == (
        "4 senders from 2 /24s, mixed: mirai 50%, unlabelled 50%, ports 23 (67%), 2323 (33%), "
        "services telnet, Mirai fingerprint on 25% of senders, active in 2 of 4 windows of 1 h"
    )


def test_rows_sorted_largest_first(hand_state: AnalystState) -> None:
    rows = cluster_rows(hand_state)
    assert [row.cluster_id for row in rows] == [TELNET_CLUSTER, HOSTILE_CLUSTER]


def test_tokens_that_are_not_addresses_have_no_subnet(hand_state: AnalystState) -> None:
    row = {row.cluster_id: row for row in cluster_rows(hand_state)}[HOSTILE_CLUSTER]
    assert row.subnets_24 == 0
    assert row.largest_subnet_24 is None
    assert row.silhouette == pytest.approx(0.25)
    assert row.description.startswith("3 senders from 0 /24s, mixed: ")


def test_cluster_without_history_or_silhouettes() -> None:
    state = build_hand_state()
    state.journal.sender_cluster["192.0.2.9"] = ("C000077", None)
    row = {row.cluster_id: row for row in cluster_rows(state)}["C000077"]
    assert (row.senders, row.ports, row.packets, row.active_windows) == (1, 0, 0, 0)
    assert row.silhouette is None
    assert row.description == "1 sender from 1 /24, all unlabelled, active in 0 of 4 windows of 1 h"


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [(0, 10, "0%"), (1, 1000, "<1%"), (999, 1000, ">99%"), (5, 5, "100%"), (1, 3, "33%"), (0, 0, "0%")],
)
def test_format_share(part: int, whole: int, text: str) -> None:
    assert format_share(part, whole) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1 h"), (86400, "1 d"), (172800, "2 d"), (1800, "30 min"), (90, "90 s"), (None, "?")],
)
def test_format_duration(seconds: int | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_describe_says_mostly_above_half(hand_state: AnalystState) -> None:
    hand_state.labels["10.0.0.3"] = SenderLabelView("mirai", 0.9, "knn")
    row = {row.cluster_id: row for row in cluster_rows(hand_state)}[TELNET_CLUSTER]
    assert "mostly mirai (75%)" in describe(row, 120)


label_views = st.one_of(
    st.none(),
    st.builds(SenderLabelView, st.one_of(st.none(), st.sampled_from(["mirai", "censys", "<x>"])),
              st.floats(0, 1), st.sampled_from(["knn", "operator-list", "mirai-fingerprint"])),
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), label_views, max_size=30))
def test_label_mix_accounts_for_every_member(views: dict[str, SenderLabelView | None]) -> None:
    labels = {sender: view for sender, view in views.items() if view is not None}
    state = AnalystState(SenderEmbedding(), SenderHistory(), ClusterJournal(), labels, windows_closed=0)
    members = sorted(views)
    mix, unlabelled = label_mix_of(state, members)
    assert sum(count.total for count in mix.values()) + unlabelled == len(members)
    inferred = Counter(v.label for v in labels.values() if v.label is not None and v.source == "knn")
    assert {label: count.inferred for label, count in mix.items() if count.inferred} == dict(inferred)
    totals = [count.total for count in mix.values()]
    assert totals == sorted(totals, reverse=True)


def test_simulated_rows_match_the_journal(simulated_state: AnalystState) -> None:
    rows = cluster_rows(simulated_state)
    journal = simulated_state.journal
    assert len(rows) == len(set(cid for cid, _ in journal.sender_cluster.values())) >= 2
    assert sum(row.senders for row in rows) == len(journal.sender_cluster)
    for row in rows:
        members = journal.members(row.cluster_id)
        assert row.senders == len(members)
        assert row.subnets_24 == len({subnet_of(s, 24) for s in members} - {NOT_AN_ADDRESS})
        silhouettes = [journal.sender_cluster[s][1] for s in members if journal.sender_cluster[s][1] is not None]
        assert row.silhouette == pytest.approx(float(np.mean(silhouettes)), abs=1e-6)


def test_simulated_ports_and_labels_match_history(simulated_state: AnalystState) -> None:
    for row in cluster_rows(simulated_state):
        members = simulated_state.journal.members(row.cluster_id)
        ports: Counter[int] = Counter()
        for sender in members:
            summary = simulated_state.history.get(sender)
            ports.update(summary.ports if summary else {})
        assert row.ports == len(ports)
        assert row.top_ports == tuple(sorted(ports.items(), key=lambda item: (-item[1], item[0]))[:5])
        labels = Counter(simulated_state.labels[s].label for s in members
                         if s in simulated_state.labels and simulated_state.labels[s].label)
        assert {label: count.total for label, count in row.label_mix.items()} == dict(labels)
        assert row.unlabelled == len(members) - sum(labels.values())


def test_simulated_mirai_cluster_is_described(simulated_state: AnalystState) -> None:
    rows = cluster_rows(simulated_state)
    mirai = max(rows, key=lambda row: row.label_mix.get("mirai", LabelCount()).total)
    assert mirai.mirai_senders > mirai.senders // 2
    assert "Mirai fingerprint on" in mirai.description
    assert mirai.top_ports[0][0] in (23, 2323)


def test_evaluation_uses_only_ground_truth(simulated_state: AnalystState) -> None:
    senders = simulated_state.embedding.keys()
    truth = ground_truth_labels(simulated_state, senders)
    assert truth
    assert all(simulated_state.labels[s].source != "knn" for s in truth)
    result = evaluation_table(simulated_state, KnnLabeller(), max_unknown=200)
    assert result.report is not None
    assert result.report.labelled == len(truth)
    assert result.ground_truth_counts == dict(Counter(truth.values()))
    supports = {score.label: score.support for score in result.report.without_unknown.classes}
    assert supports == dict(Counter(truth.values()))
    assert result.report.with_unknown is not None
    assert result.report.with_unknown.queries <= len(truth) + 200


def test_evaluation_needs_two_classes(hand_state: AnalystState) -> None:
    for sender in list(hand_state.labels):
        if hand_state.labels[sender].label not in (None, "mirai"):
            del hand_state.labels[sender]
    result = evaluation_table(hand_state, KnnLabeller())
    assert result.report is None
    assert "at least 2 classes" in result.note
    assert result.ground_truth_counts == {"mirai": 1}
