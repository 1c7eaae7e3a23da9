"""Send alerts to a Splunk HTTP Event Collector over HTTP or HTTPS.

Batches are posted to ``/services/collector/event`` as concatenated event
objects with ``Authorization: Splunk <token>``. The token is kept in a
``Secret`` whose ``repr`` and ``str`` are masked, and no log line or error
message includes it. Indexer acknowledgement (HEC channels) is not used.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Sequence

from darkvec_stream.alerts.sinks.base import (
    AlertSink,
    PendingAlert,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from darkvec_stream.errors import ConfigError

HEC_EVENT_PATH = "/services/collector/event"

#: HTTP statuses that mean the events themselves are bad: resending cannot help.
#: Authentication errors (401, 403) stay transient, since fixing the token
#: on the Splunk side lets buffered alerts through.
PERMANENT_STATUSES = frozenset({400, 413})


class Secret:
    """A string that never shows its value in ``repr``, ``str`` or format strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class HecSink(AlertSink):
    """Post alerts to the HEC at ``url``; a url without a path gets ``/services/collector/event``.

    ``ssl_context`` None verifies HTTPS servers against the system trust
    store. ``timeout_s`` bounds each request.
    """

    def __init__(
        self,
        url: str,
        token: str | Secret,
        *,
        name: str | None = None,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        self._endpoint = _event_endpoint(url)
        self._token = token if isinstance(token, Secret) else Secret(token)
        if not self._token.reveal():
            raise ConfigError("Splunk HEC token is empty; set the HEC token")
        super().__init__(name=name or f"hec:{self._endpoint}", format="splunk-hec", **options)
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"HecSink(name={self.name!r}, endpoint={self._endpoint!r}, token={self._token!r})"

    def _deliver(self, batch: Sequence[PendingAlert]) -> None:
        body = b"\n".join(pending.payload for pending in batch)
        request = urllib.request.Request(
            self._endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Splunk {self._token.reveal()}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout_s, context=self._ssl_context
            ) as response:
                response.read()
        except urllib.error.HTTPError as error:
            detail = _response_text(error)
            message = f"HEC {self._endpoint} returned HTTP {error.code}: {detail}"
            if error.code in PERMANENT_STATUSES:
                raise PermanentDeliveryError(message) from None
            raise TransientDeliveryError(message) from None
        except (urllib.error.URLError, OSError) as error:
            # ``from None`` keeps the request, and with it the token header,
            # out of any traceback that a caller might log.
            raise TransientDeliveryError(f"HEC {self._endpoint} unreachable: {error}") from None


def _event_endpoint(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"Splunk HEC url {url!r} is invalid; use http(s)://host:port, for example "
            "https://splunk.example.net:8088"
        )
    if parts.username or parts.password:
        raise ConfigError("Splunk HEC url must not carry credentials; pass the token separately")
    # A path other than "/" is kept, for collectors behind a path-routing proxy.
    path = parts.path if parts.path not in ("", "/") else HEC_EVENT_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _response_text(error: urllib.error.HTTPError) -> str:
    try:
        return error.read(500).decode("utf-8", "replace").strip()
    except OSError:
        return "(no body)"
