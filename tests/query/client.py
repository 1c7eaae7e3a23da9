"""A minimal HTTP client for the query API tests: status, JSON body and headers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """Return status, decoded JSON body (None when empty) and headers of one request."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, raw, reply_headers = reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as error:
        status, raw, reply_headers = error.code, error.read(), dict(error.headers)
    return status, json.loads(raw) if raw else None, reply_headers
