"""The OpenAPI 3.1 description of the query API, served at ``/openapi.json``.

``openapi_document`` returns the whole description as a dict, with the
page-size and neighbour limits of the running server filled in, so tools
such as schemathesis generate requests and check replies against it. It
describes every response body. It does not route or handle requests.
"""

from __future__ import annotations

from typing import Any

from darkvec_stream.alerts.model import AlertType
from darkvec_stream.query.params import CLUSTER_ID_PATTERN, MAX_EPOCH_S, SENDER_TOKEN_PATTERN

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
ERROR_CODES = ("bad_address", "bad_parameter", "not_found", "method_not_allowed", "not_ready", "uri_too_long",
               "headers_too_large", "bad_request", "busy", "internal_error")

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}


def openapi_document(max_page_size: int, max_neighbours: int, max_offset: int = 1_000_000_000) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the given limits."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "darkvec-stream query API",
            "version": API_VERSION,
            "description": (
                "Read-only answers about darknet senders, their clusters and alerts, from the state of the "
                "last closed window. Every list is paginated with limit and offset; replies carry total and "
                "next. Errors are JSON objects with an error code and a message."
            ),
        },
        "paths": _paths(),
        "components": {
            "parameters": _parameters(max_page_size, max_neighbours, max_offset),
            "responses": _responses(),
            "schemas": _schemas(),
        },
    }


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("schemas", schema_name)}}}


def _operation(operation_id: str, summary: str, schema_name: str, parameters: list[str],
               errors: tuple[str, ...], links: dict[str, tuple[str, str, str]] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json(schema_name, summary)}
    if links:
        # Links tell clients (and schemathesis' stateful phase) which reply
        # field feeds which parameter of a follow-up request.
        responses["200"]["links"] = {
            name: {"operationId": target, "parameters": {parameter: f"$response.body#{pointer}"}}
            for name, (target, parameter, pointer) in links.items()
        }
    for status in errors:
        responses[status] = _ref("responses", f"Error{status}")
    return {"get": {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [_ref("parameters", name) for name in parameters],
        "responses": responses,
    }}


def _paths() -> dict[str, Any]:
    state_errors = ("400", "503")
    return {
        "/healthz": {"get": {
            "operationId": "health",
            "summary": "State age, windows closed and senders in the model; 503 before the first window",
            "responses": {"200": _json("Health", "The query state is available"),
                          "503": _json("Health", "No window has been processed yet")},
        }},
        "/openapi.json": _operation("openapi", "This description", "OpenApiDocument", [], ()),
        "/senders/{ip}": _operation(
            "sender", "Label, evidence neighbours, cluster, first and last seen, ports and activity per window",
            "Sender", ["ip"], (*state_errors, "404"),
            {"neighbours": ("neighbours", "ip", "/sender"), "cluster": ("cluster", "id", "/cluster/id")},
        ),
        "/senders/{ip}/neighbours": _operation(
            "neighbours", "The k most similar senders with their labels and clusters", "Neighbours",
            ["ip", "k"], (*state_errors, "404"),
            {"neighbour": ("sender", "ip", "/neighbours/0/sender")},
        ),
        "/clusters": _operation(
            "clusters", "Clusters of the last clustering run with their profiles", "ClusterPage",
            ["limit", "offset"], state_errors,
            {"cluster": ("cluster", "id", "/items/0/id")},
        ),
        "/clusters/{id}": _operation(
            "cluster", "One cluster: profile, members (paginated), transitions and alerts", "Cluster",
            ["cluster_id", "limit", "offset"], (*state_errors, "404"),
            {"member": ("sender", "ip", "/members/items/0/sender")},
        ),
        "/alerts": _operation(
            "alerts", "Recent alerts, oldest first, filtered by time, type and cluster", "AlertPage",
            ["since", "type", "cluster", "limit", "offset"], state_errors,
            {"cluster": ("cluster", "id", "/items/0/cluster_id")},
        ),
    }


def _parameters(max_page_size: int, max_neighbours: int, max_offset: int) -> dict[str, Any]:
    return {
        "ip": {
            "name": "ip", "in": "path", "required": True,
            "description": "Sender IPv4 or IPv6 address (or the token an anonymised trace uses)",
            "schema": {"anyOf": [
                {"type": "string", "format": "ipv4"},
                {"type": "string", "format": "ipv6"},
                {"type": "string", "pattern": SENDER_TOKEN_PATTERN},
            ]},
        },
        "cluster_id": {
            "name": "id", "in": "path", "required": True,
            "description": "Global cluster id as listed by /clusters",
            "schema": {"type": "string", "pattern": CLUSTER_ID_PATTERN},
        },
        "k": {
            "name": "k", "in": "query", "required": False, "description": "Neighbours to return",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_neighbours, "default": min(10, max_neighbours)},
        },
        "limit": {
            "name": "limit", "in": "query", "required": False, "description": "Items per page",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_page_size,
                       "default": min(100, max_page_size)},
        },
        "offset": {
            "name": "offset", "in": "query", "required": False, "description": "Items to skip",
            "schema": {"type": "integer", "minimum": 0, "maximum": max_offset, "default": 0},
        },
        "since": {
            "name": "since", "in": "query", "required": False,
            "description": "Only alerts at or after this time: epoch seconds or ISO 8601 (UTC when no offset)",
            "schema": {"anyOf": [
                {"type": "number", "minimum": -MAX_EPOCH_S, "maximum": MAX_EPOCH_S},
                {"type": "string", "format": "date-time"},
            ]},
        },
        "type": {
            "name": "type", "in": "query", "required": False, "description": "Only alerts of this type",
            "schema": {"type": "string", "enum": [kind.value for kind in AlertType]},
        },
        "cluster": {
            "name": "cluster", "in": "query", "required": False, "description": "Only alerts about this cluster",
            "schema": {"type": "string", "pattern": CLUSTER_ID_PATTERN},
        },
    }


def _responses() -> dict[str, Any]:
    meanings = {
        "400": "A malformed address or parameter",
        "404": "Unknown sender, cluster or path",
        "405": "A method other than GET or HEAD",
        "503": "No window has been processed yet, or the server is at its connection limit",
    }
    return {f"Error{status}": _json("Error", meaning) for status, meaning in meanings.items()}


def _object(properties: dict[str, Any], *, closed: bool = True, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": sorted(properties)}
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def _page(item_schema: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object({
        **(extra or {}),
        "total": {"type": "integer", "minimum": 0, "description": "Items that match, over all pages"},
        "limit": {"type": "integer", "minimum": 1},
        "offset": {"type": "integer", "minimum": 0},
        "next": {**_NULLABLE_STRING, "description": "Relative URL of the next page, null on the last one"},
        "items": {"type": "array", "items": _ref("schemas", item_schema)},
    })


def _schemas() -> dict[str, Any]:
    return {
        "Error": _object({
            "error": {"type": "string", "enum": list(ERROR_CODES)},
            "message": {"type": "string", "description": "What failed, on which value, and what to do"},
        }),
        "Health": _object({
            "status": {"type": "string", "enum": ["ok", "starting"]},
            "state_age_s": {**_NULLABLE_NUMBER, "description": "Seconds since the state was published"},
            "windows_closed": {"type": "integer", "minimum": 0},
            "senders": {"type": "integer", "minimum": 0, "description": "Senders in the model"},
            "window_index": _NULLABLE_INT,
            "window_end": _NULLABLE_STRING,
        }),
        "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"]},
        "Label": _object({
            "label": {**_NULLABLE_STRING, "description": "null when the kNN vote abstained"},
            "confidence": {"type": "number"},
            "source": {"type": "string", "description": "label list name, mirai-fingerprint, or knn"},
            "ground_truth": {"type": "boolean"},
        }),
        "Evidence": _object({
            "sender": {"type": "string"},
            "similarity": {"type": "number", "description": "Cosine similarity to the queried sender"},
            "label": _NULLABLE_STRING,
            "source": _NULLABLE_STRING,
        }),
        "Neighbour": _object({
            "sender": {"type": "string"},
            "similarity": {"type": "number"},
            "label": _NULLABLE_STRING,
            "source": _NULLABLE_STRING,
            "cluster": _NULLABLE_STRING,
        }),
        "Sender": _sender_schema(),
        "Neighbours": _object({
            "sender": {"type": "string"},
            "k": {"type": "integer", "minimum": 1},
            "in_model": {"type": "boolean"},
            "neighbours": {"type": "array", "items": _ref("schemas", "Neighbour")},
        }),
        "Transition": _object({
            "kind": {"type": "string", "description": "emerged, survived, split, merged, absorbed, disappeared, "
                                                      "reemerged"},
            "cluster_id": {"type": "string"},
            "window_index": {"type": "integer"},
            "size_before": {"type": "integer"},
            "size_after": {"type": "integer"},
            "related": {"type": "array", "items": {"type": "string"}},
            "jaccard": _NULLABLE_NUMBER,
            "absent_windows": _NULLABLE_INT,
        }, closed=False),
        "Profile": {
            "type": "object", "required": ["size"],
            "description": "Cluster profile: size, silhouette, top ports, services and subnets, label counts, "
                           "packets per window",
            "properties": {
                "size": {"type": "integer", "minimum": 0},
                "silhouette": _NULLABLE_NUMBER,
                "top_ports": {"type": "array", "items": {"type": "array"}},
                "label_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "packets_per_window": {"type": "array", "items": {"type": "array"}},
            },
        },
        "ClusterSummary": _object({
            "id": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "silhouette": _NULLABLE_NUMBER,
            "last_transition": {"oneOf": [_ref("schemas", "Transition"), {"type": "null"}]},
            "profile": _ref("schemas", "Profile"),
        }),
        "ClusterPage": _page("ClusterSummary", {"window_index": _NULLABLE_INT}),
        "Member": _object({
            "sender": {"type": "string"},
            "silhouette": _NULLABLE_NUMBER,
            "label": _NULLABLE_STRING,
            "source": _NULLABLE_STRING,
        }),
        "MemberPage": _page("Member"),
        "Cluster": _object({
            "id": {"type": "string"},
            "active": {"type": "boolean", "description": "false for a cluster known only from past transitions"},
            "window_index": _NULLABLE_INT,
            "profile": {"oneOf": [_ref("schemas", "Profile"), {"type": "null"}]},
            "members": _ref("schemas", "MemberPage"),
            "transitions": {"type": "array", "items": _ref("schemas", "Transition")},
            "alerts_total": {"type": "integer", "minimum": 0},
            "alerts": {"type": "array", "items": _ref("schemas", "Alert"),
                       "description": "The newest alerts about this cluster; /alerts?cluster= pages through all"},
        }),
        "Alert": _alert_schema(),
        "AlertPage": _page("Alert"),
    }


def _sender_schema() -> dict[str, Any]:
    return _object({
        "sender": {"type": "string"},
        "in_model": {"type": "boolean"},
        "label": {"oneOf": [_ref("schemas", "Label"), {"type": "null"}]},
        "evidence": {"type": "array", "items": _ref("schemas", "Evidence"),
                     "description": "Nearest senders whose label is ground truth, most similar first"},
        "cluster": {"oneOf": [_object({"id": {"type": "string"}, "silhouette": _NULLABLE_NUMBER}),
                              {"type": "null"}]},
        "first_seen": _NULLABLE_STRING,
        "first_seen_ns": _NULLABLE_INT,
        "last_seen": _NULLABLE_STRING,
        "last_seen_ns": _NULLABLE_INT,
        "packets": {"type": "integer", "minimum": 0},
        "mirai_packets": {"type": "integer", "minimum": 0},
        "windows_active": {"type": "integer", "minimum": 0},
        "ports": {"type": "array", "items": _object({"port": {"type": "integer"}, "packets": {"type": "integer"}})},
        "services": {"type": "array",
                     "items": _object({"service": {"type": "string"}, "windows": {"type": "integer"}})},
        "activity": {"type": "array", "description": "Packets in each remembered window, oldest first",
                     "items": _object({"window_index": {"type": "integer"}, "start": {"type": "string"},
                                       "start_ns": {"type": "integer"}, "packets": {"type": "integer"}})},
    })


def _alert_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One alert as written to alerts.jsonl",
        "required": ["alert_id", "type", "severity", "time", "time_ns", "window_index", "cluster_id",
                     "member_count", "summary"],
        "properties": {
            "alert_id": {"type": "string"},
            "type": {"type": "string", "enum": [kind.value for kind in AlertType]},
            "severity": {"type": "string", "enum": ["low", "medium", "high"]},
            "time": {"type": "string"},
            "time_ns": {"type": "integer"},
            "window_index": {"type": "integer"},
            "cluster_id": _NULLABLE_STRING,
            "sender": _NULLABLE_STRING,
            "member_count": {"type": "integer"},
            "summary": {"type": "string"},
            "evidence": {"type": "object"},
        },
    }
