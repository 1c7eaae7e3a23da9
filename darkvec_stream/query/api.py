"""The read-only query API: routes, parameters and JSON responses, without any HTTP plumbing.

``QueryApi.handle(method, target)`` responds to one request from the newest
snapshot: what a sender is (label, evidence neighbours, cluster, activity per
window), its neighbours, the clusters, one cluster, and recent alerts, with
pagination on every list. Refusals are JSON ``{"error": code, "message": ...}``
with 400, 404, 405 or 503. The HTTP server (``server``) and the command line
call it; it never modifies the state and never blocks the pipeline.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from darkvec_stream.alerts.formats.common import rfc3339_ns
from darkvec_stream.alerts.model import AlertType
from darkvec_stream.errors import ConfigError
from darkvec_stream.query.openapi import openapi_document
from darkvec_stream.query.params import (
    ApiError,
    parse_cluster_id,
    parse_integer,
    parse_sender,
    parse_since_ns,
    shown,
)
from darkvec_stream.query.snapshot import Neighbour, QuerySnapshot, SnapshotSource

ALLOWED_METHODS = ("GET", "HEAD")
DEFAULT_PAGE_SIZE = 100
DEFAULT_NEIGHBOURS = 10
MAX_OFFSET = 1_000_000_000
MAX_QUERY_FIELDS = 16
ALERT_TYPES = tuple(kind.value for kind in AlertType)
# Alerts shown inline in /clusters/{id}; /alerts?cluster= pages through all.
CLUSTER_ALERTS_SHOWN = 100


@dataclass(frozen=True)
class ApiResponse:
    """One response: HTTP status, a JSON-ready body and extra headers."""

    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class _Request:
    path: str
    params: Mapping[str, str]
    snapshot: QuerySnapshot | None


class QueryApi:
    """Read-only queries about senders, clusters and alerts, served from a snapshot source.

    ``max_page_size`` bounds ``limit`` on every list, ``max_neighbours``
    bounds ``k`` on ``/senders/{ip}/neighbours``, and ``evidence_neighbours``
    is how many ground-truth-labelled neighbours ``/senders/{ip}`` shows
    (the kNN vote's ``k`` is the natural value).
    """

    def __init__(
        self,
        source: SnapshotSource,
        *,
        max_page_size: int = 1000,
        max_neighbours: int = 100,
        evidence_neighbours: int = 7,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("max_page_size", max_page_size), ("max_neighbours", max_neighbours),
                            ("evidence_neighbours", evidence_neighbours)):
            if value < 1:
                raise ConfigError(f"query {name} {value} is invalid: use 1 or more")
        self.source = source
        self.max_page_size = max_page_size
        self.max_neighbours = max_neighbours
        self.evidence_neighbours = evidence_neighbours
        self._clock = clock
        self._openapi = openapi_document(max_page_size, max_neighbours)
        self._routes: tuple[tuple[re.Pattern[str], Callable[..., Any], bool], ...] = (
            (re.compile(r"/healthz"), self._health, False),
            (re.compile(r"/openapi\.json"), self._document, False),
            (re.compile(r"/senders/([^/]+)"), self._sender, True),
            (re.compile(r"/senders/([^/]+)/neighbours"), self._neighbours, True),
            (re.compile(r"/clusters"), self._clusters, True),
            (re.compile(r"/clusters/([^/]+)"), self._cluster, True),
            (re.compile(r"/alerts"), self._alerts, True),
        )

    @property
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 description of this API, with its limits filled in."""
        return self._openapi

    def handle(self, method: str, target: str) -> ApiResponse:
        """Answer one request line's method and target (path and query string)."""
        try:
            return self._dispatch(method.upper(), target)
        except ApiError as error:
            return ApiResponse(error.status, {"error": error.code, "message": error.message}, error.headers)

    def _dispatch(self, method: str, target: str) -> ApiResponse:
        split = urlsplit(target)
        for pattern, handler, needs_state in self._routes:
            match = pattern.fullmatch(split.path)
            if match is None:
                continue
            if method not in ALLOWED_METHODS:
                raise ApiError(405, "method_not_allowed",
                               f"method {method} is not allowed: this API is read-only, use GET",
                               (("Allow", ", ".join(ALLOWED_METHODS)),))
            snapshot = self.source.current
            if needs_state and snapshot is None:
                raise ApiError(503, "not_ready", "no window has been processed yet: retry after the first window "
                                                 "closes", (("Retry-After", "10"),))
            segments = [_segment(group) for group in match.groups()]
            request = _Request(split.path, _query_params(split.query), snapshot)
            answer = handler(request, *segments)
            return answer if isinstance(answer, ApiResponse) else ApiResponse(200, answer)
        raise ApiError(404, "not_found", f"no endpoint at {shown(split.path)}: see /openapi.json for the endpoints")

    # -- endpoints -----------------------------------------------------------

    def _health(self, request: _Request) -> dict[str, Any] | ApiResponse:
        snapshot = request.snapshot
        if snapshot is None:
            return ApiResponse(503, {"status": "starting", "state_age_s": None, "windows_closed": 0, "senders": 0,
                                     "window_index": None, "window_end": None}, (("Retry-After", "10"),))
        windows = snapshot.windows
        return {
            "status": "ok",
            "state_age_s": round(max(0.0, self._clock() - snapshot.published_s), 3),
            "windows_closed": snapshot.windows_closed,
            "senders": len(snapshot.senders),
            "window_index": snapshot.window_index,
            "window_end": rfc3339_ns(windows[-1].end_ns) if windows else None,
        }

    def _document(self, request: _Request) -> dict[str, Any]:
        return self._openapi

    def _sender(self, request: _Request, text: str) -> dict[str, Any]:
        snapshot, sender = self._known_sender(request, text)
        facts = snapshot.facts.get(sender)
        body: dict[str, Any] = {
            "sender": sender,
            "in_model": snapshot.row(sender) is not None,
            "label": _label_json(snapshot, sender),
            "evidence": [_neighbour_json(snapshot, item, with_cluster=False)
                         for item in snapshot.evidence(sender, self.evidence_neighbours)],
            "cluster": _cluster_of(snapshot, sender),
            "first_seen": None, "first_seen_ns": None, "last_seen": None, "last_seen_ns": None,
            "packets": 0, "mirai_packets": 0, "windows_active": 0, "ports": [], "services": [],
        }
        if facts is not None:
            body.update({
                "first_seen": rfc3339_ns(facts.first_seen_ns), "first_seen_ns": facts.first_seen_ns,
                "last_seen": rfc3339_ns(facts.last_seen_ns), "last_seen_ns": facts.last_seen_ns,
                "packets": facts.packets, "mirai_packets": facts.mirai_packets,
                "windows_active": facts.windows_active,
                "ports": [{"port": port, "packets": packets} for port, packets in facts.ports_busiest()],
                "services": [{"service": service, "windows": windows}
                             for service, windows in facts.services_busiest()],
            })
        body["activity"] = [
            {"window_index": span.index, "start": rfc3339_ns(span.start_ns), "start_ns": span.start_ns,
             "packets": packets}
            for span, packets in snapshot.activity(sender)
        ]
        return body

    def _neighbours(self, request: _Request, text: str) -> dict[str, Any]:
        snapshot, sender = self._known_sender(request, text)
        k = parse_integer("k", request.params.get("k"), min(DEFAULT_NEIGHBOURS, self.max_neighbours), 1,
                          self.max_neighbours)
        return {
            "sender": sender,
            "k": k,
            "in_model": snapshot.row(sender) is not None,
            "neighbours": [_neighbour_json(snapshot, item, with_cluster=True) for item in snapshot.nearest(sender, k)],
        }

    def _clusters(self, request: _Request) -> dict[str, Any]:
        snapshot = _state(request)
        limit, offset = self._page(request)
        ids = snapshot.cluster_ids()
        items = [_cluster_summary(snapshot, cluster_id) for cluster_id in ids[offset:offset + limit]]
        return {"window_index": snapshot.cluster_window_index,
                **_page_json(request.path, {}, items, len(ids), limit, offset)}

    def _cluster(self, request: _Request, text: str) -> dict[str, Any]:
        snapshot = _state(request)
        cluster_id = parse_cluster_id(text)
        if not snapshot.contains_cluster(cluster_id):
            raise ApiError(404, "not_found", f"cluster {cluster_id} is not known: /clusters lists the current ones")
        limit, offset = self._page(request)
        members = snapshot.members(cluster_id)
        alerts = snapshot.cluster_alerts(cluster_id)
        page = [_member_json(snapshot, sender) for sender in members[offset:offset + limit]]
        return {
            "id": cluster_id,
            "active": cluster_id in snapshot.profiles,
            "window_index": snapshot.cluster_window_index,
            "profile": snapshot.profiles.get(cluster_id),
            "members": _page_json(request.path, {}, page, len(members), limit, offset),
            "transitions": list(snapshot.transitions.get(cluster_id, ())),
            "alerts_total": len(alerts),
            "alerts": list(alerts[-CLUSTER_ALERTS_SHOWN:]),
        }

    def _alerts(self, request: _Request) -> dict[str, Any]:
        snapshot = _state(request)
        limit, offset = self._page(request)
        filters: dict[str, str] = {}
        since_ns = None
        if "since" in request.params:
            filters["since"] = request.params["since"]
            since_ns = parse_since_ns(filters["since"])
        alert_type = request.params.get("type")
        if alert_type is not None:
            if alert_type not in ALERT_TYPES:
                raise ApiError(400, "bad_parameter",
                               f"type={shown(alert_type)} is not an alert type: use one of {', '.join(ALERT_TYPES)}")
            filters["type"] = alert_type
        cluster_id = request.params.get("cluster")
        if cluster_id is not None:
            filters["cluster"] = parse_cluster_id(cluster_id)
        selected = [
            alert for alert in snapshot.alerts
            if (since_ns is None or int(alert.get("time_ns", 0)) >= since_ns)
            and (alert_type is None or alert.get("type") == alert_type)
            and (cluster_id is None or alert.get("cluster_id") == cluster_id)
        ]
        return _page_json(request.path, filters, selected[offset:offset + limit], len(selected), limit, offset)

    # -- helpers -------------------------------------------------------------

    def _known_sender(self, request: _Request, text: str) -> tuple[QuerySnapshot, str]:
        snapshot = _state(request)
        sender = parse_sender(text)
        if not snapshot.contains_sender(sender):
            raise ApiError(404, "not_found",
                           f"sender {sender} is not in the model: it was never seen, was filtered out as too "
                           "quiet, or expired")
        return snapshot, sender

    def _page(self, request: _Request) -> tuple[int, int]:
        limit = parse_integer("limit", request.params.get("limit"), min(DEFAULT_PAGE_SIZE, self.max_page_size), 1,
                              self.max_page_size)
        offset = parse_integer("offset", request.params.get("offset"), 0, 0, MAX_OFFSET)
        return limit, offset


def _state(request: _Request) -> QuerySnapshot:
    assert request.snapshot is not None, "routes that need state are refused before the first snapshot"
    return request.snapshot


def _segment(raw: str) -> str:
    try:
        text = unquote(raw, errors="strict") if "%" in raw else raw
    except UnicodeDecodeError:
        text = ""
    if not text or "\x00" in text:
        raise ApiError(400, "bad_parameter", f"path segment {shown(raw)} is empty or invalid")
    return text


def _query_params(query: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_parameter",
                       f"query string is invalid or has more than {MAX_QUERY_FIELDS} parameters") from None
    params: dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) > 1:
            raise ApiError(400, "bad_parameter", f"parameter {shown(name)} is given {len(values)} times: give it once")
        params[name] = values[0]
    return params


def _page_json(path: str, filters: Mapping[str, str], items: Sequence[Any], total: int, limit: int,
               offset: int) -> dict[str, Any]:
    following = offset + limit
    next_url = None
    if following < total:
        query = urlencode({**filters, "limit": limit, "offset": following}, quote_via=quote)
        next_url = f"{path}?{query}"
    return {"total": total, "limit": limit, "offset": offset, "next": next_url, "items": list(items)}


def _label_json(snapshot: QuerySnapshot, sender: str) -> dict[str, Any] | None:
    value = snapshot.labels.get(sender)
    if value is None:
        return None
    return {"label": value.label, "confidence": round(float(value.confidence), 6), "source": value.source,
            "ground_truth": snapshot.is_ground_truth(sender)}


def _cluster_of(snapshot: QuerySnapshot, sender: str) -> dict[str, Any] | None:
    entry = snapshot.sender_cluster.get(sender)
    if entry is None:
        return None
    return {"id": entry[0], "silhouette": entry[1]}


def _neighbour_json(snapshot: QuerySnapshot, item: Neighbour, with_cluster: bool) -> dict[str, Any]:
    value = snapshot.labels.get(item.sender)
    body: dict[str, Any] = {
        "sender": item.sender,
        "similarity": item.similarity,
        "label": None if value is None else value.label,
        "source": None if value is None else value.source,
    }
    if with_cluster:
        cluster = snapshot.sender_cluster.get(item.sender)
        body["cluster"] = None if cluster is None else cluster[0]
    return body


def _member_json(snapshot: QuerySnapshot, sender: str) -> dict[str, Any]:
    value = snapshot.labels.get(sender)
    entry = snapshot.sender_cluster.get(sender)
    return {
        "sender": sender,
        "silhouette": None if entry is None else entry[1],
        "label": None if value is None else value.label,
        "source": None if value is None else value.source,
    }


def _cluster_summary(snapshot: QuerySnapshot, cluster_id: str) -> dict[str, Any]:
    profile = snapshot.profiles[cluster_id]
    transitions = snapshot.transitions.get(cluster_id, ())
    return {
        "id": cluster_id,
        "size": int(profile.get("size", 0)),
        "silhouette": profile.get("silhouette"),
        "last_transition": dict(transitions[-1]) if transitions else None,
        "profile": profile,
    }
