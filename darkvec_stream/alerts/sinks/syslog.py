"""Send alerts as RFC 5424 syslog messages over UDP or TCP to one collector.

The body is a rendered alert (CEF by default). UDP sends one datagram per
message (RFC 5426) and truncates messages above ``max_message_bytes``. TCP
keeps one connection and frames messages by octet counting (RFC 6587).
TLS transport (RFC 5425) is not implemented.
"""

from __future__ import annotations

import logging
import select
import socket
from typing import Any, Literal, Sequence

from darkvec_stream.alerts.formats import SyslogHeader, octet_counted, syslog_message
from darkvec_stream.alerts.sinks.base import AlertSink, PendingAlert, TransientDeliveryError
from darkvec_stream.errors import ConfigError

logger = logging.getLogger(__name__)

SyslogProtocol = Literal["udp", "tcp"]

#: The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes).
MAX_UDP_PAYLOAD_BYTES = 65_507


class SyslogSink(AlertSink):
    """Deliver alerts to a syslog collector at ``host``:``port``.

    ``protocol`` is ``"udp"`` or ``"tcp"``; ``connect_timeout_s`` bounds TCP
    connects and sends. Only TCP can detect an unavailable collector
    reliably: UDP loss is silent unless the host sends ICMP port unreachable.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 514,
        protocol: SyslogProtocol = "udp",
        format: str = "cef",
        *,
        name: str | None = None,
        header: SyslogHeader | None = None,
        connect_timeout_s: float = 5.0,
        max_message_bytes: int = 8192,
        **options: Any,
    ) -> None:
        _validate(host, port, protocol, max_message_bytes)
        super().__init__(name=name or f"syslog-{protocol}:{host}:{port}", format=format, **options)
        self._address = (host, port)
        self._protocol = protocol
        self._header = header or SyslogHeader()
        self._connect_timeout_s = connect_timeout_s
        self._max_message_bytes = max_message_bytes
        self._socket: socket.socket | None = None
        self.truncated = 0

    def _deliver(self, batch: Sequence[PendingAlert]) -> None:
        for index, pending in enumerate(batch):
            message = syslog_message(pending.alert, pending.payload, self._context, self._header)
            try:
                self._send_message(message)
            except OSError as error:
                raise TransientDeliveryError(
                    f"syslog {self._protocol} to {self._address[0]}:{self._address[1]} "
                    f"failed: {error}",
                    delivered=index,
                ) from error

    def _disconnect(self) -> None:
        if self._socket is not None:
            sock, self._socket = self._socket, None
            sock.close()

    def _send_message(self, message: bytes) -> None:
        sock = self._connected_socket()
        if self._protocol == "udp":
            sock.send(self._truncate(message))
        else:
            sock.sendall(octet_counted(message))

    def _connected_socket(self) -> socket.socket:
        if self._socket is not None and self._protocol == "tcp" and _peer_closed(self._socket):
            logger.info(
                "syslog collector %s:%s closed the connection; reconnecting", *self._address
            )
            self._disconnect()
        if self._socket is None:
            self._socket = self._connect()
        return self._socket

    def _connect(self) -> socket.socket:
        if self._protocol == "tcp":
            return socket.create_connection(self._address, timeout=self._connect_timeout_s)
        family, kind, proto, _, address = socket.getaddrinfo(
            *self._address, type=socket.SOCK_DGRAM
        )[0]
        sock = socket.socket(family, kind, proto)
        # A connected UDP socket reports ICMP port-unreachable as an error on a later send.
        sock.connect(address)
        return sock

    def _truncate(self, message: bytes) -> bytes:
        if len(message) <= self._max_message_bytes:
            return message
        self.truncated += 1
        cut = message[: self._max_message_bytes]
        # Cut at a UTF-8 character boundary: drop continuation bytes at the end.
        return cut.decode("utf-8", "ignore").encode("utf-8")


def _peer_closed(sock: socket.socket) -> bool:
    """Detect a collector that closed the TCP connection before we write into it.

    Without this check the first message after a collector restart would be
    written into a dead connection and lost silently.
    """
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _validate(host: str, port: int, protocol: str, max_message_bytes: int) -> None:
    if protocol not in ("udp", "tcp"):
        raise ConfigError(f"syslog protocol {protocol!r} is invalid; use 'udp' or 'tcp'")
    if not host:
        raise ConfigError("syslog host is empty; set the collector address")
    if not 1 <= port <= 65535:
        raise ConfigError(f"syslog port {port} is invalid; use 1-65535")
    if not 480 <= max_message_bytes <= MAX_UDP_PAYLOAD_BYTES:
        # RFC 5426: every receiver accepts 480-byte messages over IPv4.
        raise ConfigError(
            f"syslog max_message_bytes {max_message_bytes} is invalid; "
            f"use 480-{MAX_UDP_PAYLOAD_BYTES}"
        )
