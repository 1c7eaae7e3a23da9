"""Syslog sink against real UDP and TCP collectors on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from darkvec_stream.alerts.formats import SyslogHeader
from darkvec_stream.alerts.sinks import RetryPolicy, SyslogSink
from darkvec_stream.errors import ConfigError
from tests.alerts.factories import CONTEXT, make_alert
from tests.alerts.servers import FakeClock, TcpSyslogCollector, free_tcp_port
from tests.alerts.test_render_syslog import SYSLOG_MSG


def _alert_id(message: bytes) -> str:
    match = SYSLOG_MSG.match(message.decode("utf-8"))
    assert match is not None, message
    return match["structured_data"].split('alertId="', 1)[1].split('"', 1)[0]


def test_syslog_udp_delivers_datagrams() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        sink = SyslogSink("127.0.0.1", port, "udp", context=CONTEXT, header=SyslogHeader(procid="1"))
        for index in range(3):
            sink.send(make_alert(index))
        received = [server.recv(65535) for _ in range(3)]
        sink.close()
    assert [_alert_id(message) for message in received] == [make_alert(i).alert_id for i in range(3)]
    assert b"CEF:0|" in received[0]


def test_syslog_udp_truncates_long_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        sink = SyslogSink("127.0.0.1", server.getsockname()[1], "udp", context=CONTEXT,
                          max_message_bytes=480)
        sink.send(make_alert(summary="é" * 400))
        datagram = server.recv(65535)
        sink.close()
    assert len(datagram) <= 480
    datagram.decode("utf-8")  # cut on a character boundary
    assert sink.truncated == 1


def test_syslog_tcp_octet_counted_delivery() -> None:
    collector = TcpSyslogCollector()
    sink = SyslogSink("127.0.0.1", collector.port, "tcp", context=CONTEXT)
    for index in range(3):
        sink.send(make_alert(index, summary=f"line one\nline {index}"))
    messages = collector.wait_for(3)
    sink.close()
    collector.close()
    assert [_alert_id(message) for message in messages] == [make_alert(i).alert_id for i in range(3)]


def test_syslog_tcp_collector_down_then_up() -> None:
    port = free_tcp_port()
    clock = FakeClock()
    sink = SyslogSink("127.0.0.1", port, "tcp", context=CONTEXT, clock=clock,
                      retry=RetryPolicy(0.5, 4.0), connect_timeout_s=1.0)
    for index in range(3):
        sink.send(make_alert(index))
    assert sink.stats.buffered == 3
    assert not sink.available

    collector = TcpSyslogCollector(port)
    clock.advance(0.5)
    sink.poll()
    messages = collector.wait_for(3)
    sink.close()
    collector.close()
    assert sink.available
    assert [_alert_id(message) for message in messages] == [make_alert(i).alert_id for i in range(3)]


def test_syslog_tcp_survives_collector_restart() -> None:
    collector = TcpSyslogCollector()
    port = collector.port
    sink = SyslogSink("127.0.0.1", port, "tcp", context=CONTEXT)
    sink.send(make_alert(0))
    assert len(collector.wait_for(1)) == 1
    collector.close()

    restarted = TcpSyslogCollector(port)
    sink.send(make_alert(1))
    messages = restarted.wait_for(1)
    sink.close()
    restarted.close()
    assert [_alert_id(message) for message in messages] == [make_alert(1).alert_id]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"protocol": "tls"}, "protocol"),
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"max_message_bytes": 100}, "max_message_bytes"),
    ],
)
def test_syslog_invalid_settings_raise(options: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=match):
        SyslogSink(**options)
