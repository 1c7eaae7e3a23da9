"""Every query API endpoint over HTTP, against the state of a real daemon run."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from darkvec_stream.query.server import QueryServer
from darkvec_stream.query.state import AnalystState
from tests.query.client import get

pytestmark = pytest.mark.slow


def knn_labelled(state: AnalystState) -> str:
    return sorted(s for s, v in state.labels.items() if v.source == "knn" and v.label and s in state.embedding)[0]


def ground_truth(state: AnalystState) -> list[str]:
    return sorted(s for s in state.embedding.keys() if state.is_ground_truth(s))


def cosine_top(state: AnalystState, sender: str, candidates: list[str], k: int) -> list[str]:
    keys, vectors = state.embedding.vectors([c for c in candidates if c != sender])
    query = state.embedding.vector(sender)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarities = unit @ (query / np.linalg.norm(query))
    return [keys[row] for row in np.argsort(-similarities, kind="stable")[:k]]


def test_healthz_reports_state(api_server: QueryServer, analyst_state: AnalystState) -> None:
    status, body, headers = get(api_server.url + "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["status"] == "ok"
    assert body["windows_closed"] == analyst_state.windows_closed
    assert body["senders"] == len(analyst_state.embedding)
    assert body["window_index"] == analyst_state.history.windows[-1].index
    assert 0 <= body["state_age_s"] < 600


def test_openapi_lists_every_endpoint(api_server: QueryServer) -> None:
    status, body, _ = get(api_server.url + "/openapi.json")
    assert status == 200
    assert body["openapi"].startswith("3.1")
    assert set(body["paths"]) == {"/healthz", "/openapi.json", "/senders/{ip}", "/senders/{ip}/neighbours",
                                  "/clusters", "/clusters/{id}", "/alerts"}
    limits = body["components"]["parameters"]
    assert limits["limit"]["schema"]["maximum"] == 50
    assert limits["k"]["schema"]["maximum"] == 40


def test_sender_shows_label_history_and_cluster(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = knn_labelled(analyst_state)
    status, body, _ = get(f"{api_server.url}/senders/{sender}")
    assert status == 200
    label = analyst_state.labels[sender]
    assert body["label"] == {"label": label.label, "confidence": round(label.confidence, 6), "source": "knn",
                             "ground_truth": False}
    summary = analyst_state.history.get(sender)
    assert summary is not None
    assert (body["first_seen_ns"], body["last_seen_ns"]) == (summary.first_seen_ns, summary.last_seen_ns)
    assert body["first_seen"] == datetime.fromtimestamp(summary.first_seen_ns // 10**9, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + f".{summary.first_seen_ns % 10**9:09d}Z"
    assert body["packets"] == summary.packets
    assert {p["port"]: p["packets"] for p in body["ports"]} == summary.ports
    assert [a["window_index"] for a in body["activity"]] == [s.index for s in analyst_state.history.windows]
    assert {a["window_index"]: a["packets"] for a in body["activity"] if a["packets"]} == summary.activity
    cluster_id, silhouette = analyst_state.journal.sender_cluster[sender]
    assert body["cluster"] == {"id": cluster_id, "silhouette": silhouette}


def test_sender_evidence_is_nearest_ground_truth(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = knn_labelled(analyst_state)
    _, body, _ = get(f"{api_server.url}/senders/{sender}")
    evidence = body["evidence"]
    assert len(evidence) == 7, "evidence_neighbours defaults to the kNN vote's k"
    assert all(analyst_state.is_ground_truth(item["sender"]) for item in evidence)
    assert [item["sender"] for item in evidence] == cosine_top(analyst_state, sender, ground_truth(analyst_state), 7)
    similarities = [item["similarity"] for item in evidence]
    assert similarities == sorted(similarities, reverse=True)
    assert evidence[0]["label"] == analyst_state.labels[evidence[0]["sender"]].label


def test_ground_truth_sender_is_not_its_own_evidence(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = ground_truth(analyst_state)[0]
    _, body, _ = get(f"{api_server.url}/senders/{sender}")
    assert body["label"]["ground_truth"] is True
    assert sender not in [item["sender"] for item in body["evidence"]]


def test_neighbours_match_exact_cosine_search(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = knn_labelled(analyst_state)
    status, body, _ = get(f"{api_server.url}/senders/{sender}/neighbours?k=12")
    assert status == 200
    assert body["k"] == 12
    found = [item["sender"] for item in body["neighbours"]]
    assert found == cosine_top(analyst_state, sender, analyst_state.embedding.keys(), 12)
    for item in body["neighbours"]:
        assert -1.0 <= item["similarity"] <= 1.0 + 1e-6
        entry = analyst_state.journal.sender_cluster.get(item["sender"])
        assert item["cluster"] == (entry[0] if entry else None)


def test_neighbours_default_k_is_ten(api_server: QueryServer, analyst_state: AnalystState) -> None:
    _, body, _ = get(f"{api_server.url}/senders/{knn_labelled(analyst_state)}/neighbours")
    assert body["k"] == 10
    assert len(body["neighbours"]) == 10


def test_ipv4_mapped_address_is_folded(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = knn_labelled(analyst_state)
    status, body, _ = get(f"{api_server.url}/senders/::ffff:{sender}")
    assert status == 200
    assert body["sender"] == sender


def test_clusters_pages_cover_every_cluster_once(api_server: QueryServer, analyst_state: AnalystState) -> None:
    seen: list[str] = []
    target: str | None = "/clusters?limit=2"
    pages = 0
    while target is not None:
        status, body, _ = get(api_server.url + target)
        assert status == 200
        assert body["total"] == len(analyst_state.journal.profiles)
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        target = body["next"]
        pages += 1
    assert seen == sorted(analyst_state.journal.profiles)
    assert pages == -(-len(seen) // 2)


def test_clusters_carry_profiles(api_server: QueryServer, analyst_state: AnalystState) -> None:
    _, body, _ = get(api_server.url + "/clusters")
    for item in body["items"]:
        profile = analyst_state.journal.profiles[item["id"]]
        assert item["profile"] == json.loads(json.dumps(profile))
        assert item["size"] == profile["size"]
        assert item["last_transition"] == analyst_state.journal.transitions[item["id"]][-1]


def test_cluster_members_transitions_alerts(api_server: QueryServer, analyst_state: AnalystState) -> None:
    journal = analyst_state.journal
    cluster_id = max(journal.profiles, key=lambda cid: journal.profiles[cid]["size"])
    members: list[str] = []
    target: str | None = f"/clusters/{cluster_id}?limit=50"
    while target is not None:
        status, body, _ = get(api_server.url + target)
        assert status == 200
        assert body["active"] is True
        members += [item["sender"] for item in body["members"]["items"]]
        target = body["members"]["next"]
    assert members == journal.members(cluster_id)
    assert body["transitions"] == list(journal.transitions[cluster_id])
    assert [a["alert_id"] for a in body["alerts"]] == [a["alert_id"] for a in journal.cluster_alerts(cluster_id)]
    assert body["alerts_total"] == len(journal.cluster_alerts(cluster_id))


def test_alerts_since_filters_by_time(api_server: QueryServer, analyst_state: AnalystState) -> None:
    alerts = list(analyst_state.journal.alerts)
    assert len(alerts) >= 3, "the run raises alerts after the short warm-up"
    middle_ns = alerts[len(alerts) // 2]["time_ns"]
    expected = [a["alert_id"] for a in alerts if a["time_ns"] >= middle_ns]
    iso = datetime.fromtimestamp(middle_ns / 1e9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for since in (str(middle_ns // 10**9), iso):
        status, body, _ = get(f"{api_server.url}/alerts?since={since}")
        assert status == 200
        assert [a["alert_id"] for a in body["items"]] == expected
        assert body["total"] == len(expected)


def test_alerts_filter_by_type_and_cluster(api_server: QueryServer, analyst_state: AnalystState) -> None:
    alerts = list(analyst_state.journal.alerts)
    kind = alerts[0]["type"]
    _, body, _ = get(f"{api_server.url}/alerts?type={kind}")
    assert [a["alert_id"] for a in body["items"]] == [a["alert_id"] for a in alerts if a["type"] == kind]
    with_cluster = next(a for a in alerts if a["cluster_id"])
    _, body, _ = get(f"{api_server.url}/alerts?cluster={with_cluster['cluster_id']}")
    assert body["items"] and all(a["cluster_id"] == with_cluster["cluster_id"] for a in body["items"])


def test_alerts_pagination_keeps_filters(api_server: QueryServer, analyst_state: AnalystState) -> None:
    alerts = list(analyst_state.journal.alerts)
    since = alerts[0]["time_ns"] // 10**9
    status, body, _ = get(f"{api_server.url}/alerts?since={since}&limit=1")
    assert status == 200
    assert len(body["items"]) == 1
    assert body["next"] == f"/alerts?since={since}&limit=1&offset=1"
    _, second, _ = get(api_server.url + body["next"])
    assert second["items"][0]["alert_id"] == alerts[1]["alert_id"]


def test_head_answers_without_body(api_server: QueryServer) -> None:
    status, body, headers = get(api_server.url + "/clusters", method="HEAD")
    assert status == 200
    assert body is None
    assert int(headers["Content-Length"]) > 0
