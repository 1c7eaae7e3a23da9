"""CEF rendering: header and extension escaping, checked by a parser that round-trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.alerts.formats import RenderContext
from darkvec_stream.alerts.formats.cef import (
    CEF_SEVERITY,
    cef_extension,
    cef_message,
    escape_extension_value,
    escape_header,
)
from tests.alerts.factories import CONTEXT, adversarial_text, alerts, make_alert

CEF_KEY = re.compile(r"^[A-Za-z0-9]+$")
_HEADER_ESCAPES = {"\\": "\\", "|": "|"}
_EXTENSION_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def _unescape(raw: str, escapes: dict[str, str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            following = raw[index + 1]
            assert following in escapes, f"invalid escape \\{following} in {raw!r}"
            out.append(escapes[following])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def parse_cef(line: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Split a CEF line into its 7 unescaped header fields and (key, value) pairs."""
    assert "\n" not in line
    assert "\r" not in line
    fields: list[str] = []
    start = index = 0
    while len(fields) < 7:
        if line[index] == "\\":
            index += 2
            continue
        if line[index] == "|":
            fields.append(_unescape(line[start:index], _HEADER_ESCAPES))
            start = index + 1
        index += 1
    return fields, parse_extension(line[start:])


def parse_extension(text: str) -> list[tuple[str, str]]:
    """Parse ``key=value`` pairs: every unescaped ``=`` ends a key that starts after a space."""
    equals: list[int] = []
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "=":
            equals.append(index)
        index += 1
    key_spans = [(text.rfind(" ", 0, position) + 1, position) for position in equals]
    pairs = []
    for number, (key_start, key_end) in enumerate(key_spans):
        value_end = key_spans[number + 1][0] - 1 if number + 1 < len(key_spans) else len(text)
        pairs.append((text[key_start:key_end], _unescape(text[key_end + 1 : value_end], _EXTENSION_ESCAPES)))
    return pairs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a|b", "a\\|b"),
        ("c:\\dir", "c:\\\\dir"),
        ("\\|", "\\\\\\|"),
        ("a=b", "a=b"),
        ("two\nlines", "two lines"),
    ],
)
def test_header_escaping(raw: str, expected: str) -> None:
    assert escape_header(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a=b", "a\\=b"),
        ("c:\\dir", "c:\\\\dir"),
        ("pipe|stays", "pipe|stays"),
        ("one\ntwo\rthree", "one\\ntwo\\rthree"),
        ("\\=", "\\\\\\="),
        ("漢字 😀", "漢字 😀"),
    ],
)
def test_extension_escaping(raw: str, expected: str) -> None:
    assert escape_extension_value(raw) == expected


def test_cef_header_fields() -> None:
    alert = make_alert()
    header, _ = parse_cef(cef_message(alert, CONTEXT))
    assert header == [
        "CEF:0", "darkvec-stream", "darkvec-stream", "0.1.0", "new_cluster",
        "New cluster of coordinated darknet senders", str(CEF_SEVERITY[alert.severity]),
    ]


def test_cef_extension_keys_from_dictionary() -> None:
    alert = make_alert(sender="192.0.2.1")
    _, pairs = parse_cef(cef_message(alert, CONTEXT))
    keys = [key for key, _ in pairs]
    for key in ("rt", "start", "end", "externalId", "cat", "cnt", "msg", "src", "cs1", "cs1Label"):
        assert key in keys
    assert dict(pairs)["src"] == "192.0.2.1"
    assert dict(pairs)["rt"] == str(alert.time_ns // 1_000_000)


def test_cef_ipv6_sender_uses_c6a2() -> None:
    _, pairs = parse_cef(cef_message(make_alert(sender="2001:db8::7"), CONTEXT))
    assert dict(pairs)["c6a2"] == "2001:db8::7"
    assert "src" not in dict(pairs)


@given(
    alerts(),
    st.builds(
        RenderContext,
        vendor=adversarial_text,
        product=adversarial_text,
        product_version=adversarial_text,
        hostname=adversarial_text,
    ),
)
@settings(max_examples=300, deadline=None)
def test_cef_round_trips_adversarial_values(alert, context) -> None:  # type: ignore[no-untyped-def]
    line = cef_message(alert, context)
    header, pairs = parse_cef(line)
    fold = lambda text: text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")  # noqa: E731
    assert header[1:4] == [fold(context.vendor), fold(context.product), fold(context.product_version)]
    assert header[6] == str(CEF_SEVERITY[alert.severity])
    assert pairs == cef_extension(alert, context)
    for key, _ in pairs:
        assert CEF_KEY.match(key), key
