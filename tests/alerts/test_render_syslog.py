"""RFC 5424 envelope: structure checked by a regex built from the RFC's ABNF, TCP framing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkvec_stream.alerts.formats import (
    RenderContext,
    SyslogHeader,
    octet_counted,
    render,
    syslog_message,
)
from darkvec_stream.alerts.formats.syslog import SYSLOG_SEVERITY, escape_param_value
from darkvec_stream.alerts.model import Severity
from darkvec_stream.errors import ConfigError
from tests.alerts.factories import CONTEXT, adversarial_text, alerts, make_alert

# RFC 5424 section 6 ABNF, transcribed rule by rule.
PRINTUSASCII = r"[\x21-\x7e]"
NILVALUE = "-"
SD_NAME = r"[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}"  # PRINTUSASCII except = SP ] "
PARAM_VALUE = r'(?:[^"\\\]]|\\["\\\]]|\\(?!["\\\]]))*'
SD_PARAM = rf'{SD_NAME}="{PARAM_VALUE}"'
SD_ELEMENT = rf"\[{SD_NAME}(?: {SD_PARAM})*\]"
STRUCTURED_DATA = rf"(?:{NILVALUE}|(?:{SD_ELEMENT})+)"
TIME_SECFRAC = r"\.\d{1,6}"
TIMESTAMP = (
    rf"(?:{NILVALUE}|\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}(?:{TIME_SECFRAC})?"
    r"(?:Z|[+-]\d{2}:\d{2}))"
)
HEADER = (
    rf"<(?P<prival>\d{{1,3}})>(?P<version>[1-9]\d{{0,2}}) (?P<timestamp>{TIMESTAMP}) "
    rf"(?P<hostname>{NILVALUE}|{PRINTUSASCII}{{1,255}}) "
    rf"(?P<app_name>{NILVALUE}|{PRINTUSASCII}{{1,48}}) "
    rf"(?P<procid>{NILVALUE}|{PRINTUSASCII}{{1,128}}) "
    rf"(?P<msgid>{NILVALUE}|{PRINTUSASCII}{{1,32}})"
)
SYSLOG_MSG = re.compile(
    rf"^{HEADER} (?P<structured_data>{STRUCTURED_DATA})(?: (?P<msg>.*))?$", re.DOTALL
)


def _parse(message: bytes) -> re.Match[str]:
    match = SYSLOG_MSG.match(message.decode("utf-8"))
    assert match is not None, message
    assert int(match["prival"]) <= 191
    return match


def test_syslog_message_matches_abnf() -> None:
    alert = make_alert(severity=Severity.HIGH)
    body = render(alert, "cef", CONTEXT)
    match = _parse(syslog_message(alert, body, CONTEXT, SyslogHeader(procid="77")))
    assert int(match["prival"]) == 16 * 8 + SYSLOG_SEVERITY[Severity.HIGH]
    assert match["version"] == "1"
    assert match["hostname"] == "telescope-test"
    assert match["msgid"] == "new_cluster"
    assert match["procid"] == "77"
    assert match["msg"] == body.decode("utf-8")
    assert f'alertId="{alert.alert_id}"' in match["structured_data"]


def test_syslog_timestamp_has_microseconds() -> None:
    alert = make_alert(time_ns=1_620_003_600_123_456_789)
    match = _parse(syslog_message(alert, b"x", CONTEXT, SyslogHeader()))
    assert match["timestamp"] == "2021-05-03T01:00:00.123456Z"


@given(
    alerts(),
    adversarial_text,
    st.text(max_size=300),
    st.integers(min_value=0, max_value=23),
)
@settings(max_examples=200, deadline=None)
def test_syslog_abnf_for_adversarial_fields(alert, hostname, app_name, facility) -> None:  # type: ignore[no-untyped-def]
    context = RenderContext(hostname=hostname)
    header = SyslogHeader(facility=facility, app_name=app_name, procid="1")
    body = render(alert, "cef", context)
    match = _parse(syslog_message(alert, body, context, header))
    assert int(match["prival"]) == facility * 8 + SYSLOG_SEVERITY[alert.severity]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('a"b', 'a\\"b'), ("a]b", "a\\]b"), ("a\\b", "a\\\\b"), ("plain", "plain")],
)
def test_sd_param_escaping(raw: str, expected: str) -> None:
    assert escape_param_value(raw) == expected


def test_octet_counting_frames_by_byte_length() -> None:
    message = "<13>1 - - - - - - é".encode()
    framed = octet_counted(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(message) == len(rest)


@pytest.mark.parametrize("facility", [-1, 24])
def test_invalid_facility_raises(facility: int) -> None:
    with pytest.raises(ConfigError, match="facility"):
        SyslogHeader(facility=facility)
