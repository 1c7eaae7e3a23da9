"""Query API refusals: 400, 404, 405, 414, 431, 503, and the server's own limits."""

from __future__ import annotations

import socket
import time

import pytest

from darkvec_stream.errors import ConfigError
from darkvec_stream.query.api import QueryApi
from darkvec_stream.query.server import QueryServer
from darkvec_stream.query.snapshot import SnapshotPublisher
from darkvec_stream.query.state import AnalystState
from tests.query.client import get

pytestmark = pytest.mark.slow


def some_sender(state: AnalystState) -> str:
    return sorted(state.embedding.keys())[0]


@pytest.mark.parametrize("path", [
    "/senders/1.2.3.256",
    "/senders/999.1.1.1/neighbours",
    "/senders/2001:db8::zz",
    "/senders/%25%25%25",
    "/senders/" + "a" * 65,
])
def test_malformed_address_is_400(api_server: QueryServer, path: str) -> None:
    status, body, headers = get(api_server.url + path)
    assert status == 400
    assert body["error"] == "bad_address"
    assert "not an IPv4 or IPv6 address" in body["message"] or "too long" in body["message"]
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("query, named", [
    ("/clusters?limit=0", "limit=0"),
    ("/clusters?limit=51", "limit=51"),
    ("/clusters?limit=ten", "limit='ten'"),
    ("/clusters?offset=-1", "offset=-1"),
    ("/alerts?since=yesterday", "since='yesterday'"),
    ("/alerts?since=2021-02-30T00:00:00Z", "since='2021-02-30T00:00:00Z'"),
    ("/alerts?since=nan", "since='nan'"),
    ("/alerts?type=worm", "type='worm'"),
    ("/alerts?cluster=C%201", "cluster id 'C 1'"),
    ("/alerts?limit=1&limit=2", "'limit' is given 2 times"),
    ("/clusters/bad%2Fid", "cluster id 'bad/id'"),
])
def test_bad_parameter_is_400(api_server: QueryServer, query: str, named: str) -> None:
    status, body, _ = get(api_server.url + query)
    assert status == 400
    assert body["error"] == "bad_parameter"
    assert named in body["message"]


def test_neighbour_k_is_bounded(api_server: QueryServer, analyst_state: AnalystState) -> None:
    sender = some_sender(analyst_state)
    status, body, _ = get(f"{api_server.url}/senders/{sender}/neighbours?k=41")
    assert status == 400
    assert body["message"] == "k=41 is out of range: give 1 to 40"


@pytest.mark.parametrize("path", ["/senders/192.0.2.200", "/senders/2001:db8::1/neighbours",
                                  "/senders/src_ipaddr1", "/clusters/C999999", "/nowhere", "/clusters/"])
def test_unknown_sender_cluster_or_path_is_404(api_server: QueryServer, path: str) -> None:
    status, body, _ = get(api_server.url + path)
    assert status == 404
    assert body["error"] == "not_found"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405(api_server: QueryServer, method: str) -> None:
    status, body, headers = get(api_server.url + "/clusters", method=method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert body["error"] == "method_not_allowed"


def test_long_request_line_is_414(api_server: QueryServer) -> None:
    status, body, _ = get(api_server.url + "/clusters?x=" + "a" * 9000)
    assert status == 414
    assert body["error"] == "uri_too_long"


def test_large_headers_are_431(api_server: QueryServer) -> None:
    headers = {f"X-Filler-{n}": "b" * 1000 for n in range(20)}
    status, body, _ = get(api_server.url + "/healthz", headers=headers)
    assert status == 431
    assert body["error"] == "headers_too_large"


def test_no_cors_and_no_caching(api_server: QueryServer) -> None:
    _, _, headers = get(api_server.url + "/healthz", headers={"Origin": "http://example.invalid"})
    assert not any(name.lower().startswith("access-control-") for name in headers)
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_before_first_window_is_503() -> None:
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0).start()
    try:
        status, body, headers = get(server.url + "/healthz")
        assert (status, body["status"]) == (503, "starting")
        status, body, headers = get(server.url + "/senders/192.0.2.1")
        assert (status, body["error"]) == (503, "not_ready")
        assert headers["Retry-After"] == "10"
    finally:
        server.stop()


def test_connections_over_the_cap_get_503() -> None:
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0, max_connections=1, request_timeout_s=5.0).start()
    stalled = socket.create_connection(server.address)
    try:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\n")  # never finishes its headers
        time.sleep(0.2)
        status, body, headers = get(server.url + "/healthz")
        assert (status, body["error"]) == (503, "busy")
        assert headers["Retry-After"] == "1"
    finally:
        stalled.close()
        server.stop()


def test_stalled_client_is_dropped_after_timeout() -> None:
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0, request_timeout_s=0.5).start()
    stalled = socket.create_connection(server.address)
    try:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        stalled.settimeout(5.0)
        started = time.monotonic()
        assert stalled.recv(1024) == b"", "the server closes the connection without an answer"
        assert time.monotonic() - started < 3.0
        status, _, _ = get(server.url + "/healthz")
        assert status == 503, "the server still answers others"
    finally:
        stalled.close()
        server.stop()


def test_trickling_client_is_dropped_at_the_request_deadline() -> None:
    # One byte at a time, each well within the per-read timeout: only a
    # deadline for the whole request frees the connection slot.
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0, request_timeout_s=1.0, max_connections=1).start()
    slow = socket.create_connection(server.address)
    try:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - started > 5.0:
                break
        slow.settimeout(0.5)
        if not closed:
            try:
                closed = slow.recv(1024) == b""
            except TimeoutError:
                closed = False
            except OSError:
                closed = True
        assert closed, "the server kept a trickling connection open past its deadline"
        assert time.monotonic() - started < 6.0
        status, body, _ = get(server.url + "/healthz")
        assert (status, body["status"]) == (503, "starting"), "the slot is free again"
    finally:
        slow.close()
        server.stop()


@pytest.mark.parametrize("line", [b"GARBAGE\x00\xff\r\n\r\n", b"GET /healthz HTTP/2.0\r\n\r\n"])
def test_malformed_request_gets_a_status_line(line: bytes) -> None:
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0).start()
    client = socket.create_connection(server.address)
    try:
        client.sendall(line)
        client.settimeout(5.0)
        reply = b""
        while chunk := client.recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.0 4") or reply.startswith(b"HTTP/1.0 5"), reply[:80]
        assert b"Content-Type: application/json" in reply
    finally:
        client.close()
        server.stop()


def test_server_binds_loopback_by_default() -> None:
    server = QueryServer(QueryApi(SnapshotPublisher()), port=0)
    try:
        assert server.address[0] == "127.0.0.1"
    finally:
        server.stop()


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ConfigError, match="max_page_size 0"):
        QueryApi(SnapshotPublisher(), max_page_size=0)
    with pytest.raises(ConfigError, match="max_connections=0"):
        QueryServer(QueryApi(SnapshotPublisher()), port=0, max_connections=0)
