"""Splunk HEC sink against a local http.server: auth header, retries, token secrecy."""

from __future__ import annotations

import logging

import orjson
import pytest

from darkvec_stream.alerts.sinks import HecSink, RetryPolicy, Secret
from darkvec_stream.errors import ConfigError
from tests.alerts.factories import CONTEXT, make_alert
from tests.alerts.servers import FakeClock, HecBehaviour, free_tcp_port, start_hec_server

TOKEN = "0f6c1e2a-hec-token-must-stay-secret"


def _events(body: bytes) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(line) for line in body.splitlines()]


def test_hec_posts_batch_with_auth_header() -> None:
    behaviour = HecBehaviour()
    server = start_hec_server(behaviour)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    sink = HecSink(url, TOKEN, context=CONTEXT, max_batch=10)
    sink.restore_pending([make_alert(0), make_alert(1)])
    sink.flush()
    server.shutdown()
    assert len(behaviour.requests) == 1
    request = behaviour.requests[0]
    assert request.path == "/services/collector/event"
    assert request.headers["Authorization"] == f"Splunk {TOKEN}"
    events = _events(request.body)
    assert [event["event"]["alert_id"] for event in events] == [
        make_alert(0).alert_id, make_alert(1).alert_id,
    ]
    assert events[0]["sourcetype"] == "darkvec:alert"


def test_hec_retries_busy_server_and_never_logs_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    behaviour = HecBehaviour(statuses=[503, 503])
    server = start_hec_server(behaviour)
    clock = FakeClock()
    sink = HecSink(f"http://127.0.0.1:{server.server_address[1]}/", TOKEN, context=CONTEXT,
                   clock=clock, retry=RetryPolicy(1.0, 10.0))
    sink.send(make_alert(0))
    clock.advance(1.0)
    sink.poll()
    assert sink.stats.failed_attempts == 2
    clock.advance(2.0)
    sink.poll()
    server.shutdown()
    assert sink.stats.delivered == 1
    assert len(behaviour.requests) == 3
    assert "HTTP 503" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(sink)
    assert TOKEN not in str(sink.stats)
    assert TOKEN not in repr(Secret(TOKEN)) + str(Secret(TOKEN)) + f"{Secret(TOKEN)}"


def test_hec_drops_rejected_batch_and_continues() -> None:
    behaviour = HecBehaviour(statuses=[400])
    server = start_hec_server(behaviour)
    sink = HecSink(f"http://127.0.0.1:{server.server_address[1]}", TOKEN, context=CONTEXT)
    sink.send(make_alert(0))
    sink.send(make_alert(1))
    server.shutdown()
    assert sink.stats.dropped["rejected"] == 1
    assert sink.stats.delivered == 1
    assert sink.available


def test_hec_unreachable_is_transient(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sink = HecSink(f"http://127.0.0.1:{free_tcp_port()}", TOKEN, context=CONTEXT,
                   clock=FakeClock(), timeout_s=2.0)
    sink.send(make_alert(0))
    assert sink.stats.buffered == 1
    assert not sink.available
    assert "unreachable" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("url", "token", "match"),
    [
        ("ftp://host:8088", TOKEN, "url"),
        ("https://user:pw@host:8088", TOKEN, "credentials"),
        ("https://host:8088", "", "token"),
    ],
)
def test_hec_invalid_settings_raise(url: str, token: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        HecSink(url, token)
