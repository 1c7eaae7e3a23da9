"""Alert builders and hypothesis strategies shared by the alert tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from darkvec_stream.alerts.formats import RenderContext
from darkvec_stream.alerts.model import Alert, AlertType, Severity, make_alert_id

HOUR_NS = 3600 * 1_000_000_000
BASE_NS = 1_620_000_000 * 1_000_000_000

CONTEXT = RenderContext(hostname="telescope-test", product_version="0.1.0")


def make_alert(index: int = 0, **overrides: Any) -> Alert:
    """Return a valid cluster alert; ``index`` varies the id and the window."""
    start_ns = BASE_NS + index * HOUR_NS
    alert = Alert(
        alert_id=make_alert_id(AlertType.NEW_CLUSTER, f"C{index:06d}", f"emerged@{index}"),
        type=AlertType.NEW_CLUSTER,
        severity=Severity.MEDIUM,
        time_ns=start_ns + HOUR_NS,
        window_index=index,
        window_start_ns=start_ns,
        window_end_ns=start_ns + HOUR_NS,
        cluster_id=f"C{index:06d}",
        member_count=12,
        sample_members=("192.0.2.1", "192.0.2.2", "2001:db8::1"),
        top_ports=((23, 100), (2323, 40)),
        summary=f"New cluster C{index:06d} of 12 senders probes telnet.",
        evidence={"unknown_share": 0.75, "threshold": 0.5},
        labels={"unknown": 9, "mirai": 3},
        sender_labels={"192.0.2.1": "mirai"},
    )
    return replace(alert, **overrides)


#: Strings decoded from UTF-8 never hold lone surrogates, so no strategy draws them.
unicode_char = st.characters(exclude_categories=("Cs",))

#: Text that breaks naive escaping: separators, escapes, line breaks, unicode.
adversarial_text = st.text(
    alphabet=st.sampled_from(list("ab |\\=\"]\r\n\t=é漢😀-:;[,{}'")) | unicode_char,
    max_size=40,
)

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
sender = st.one_of(ipv4, ipv6, st.from_regex(r"src_ipaddr[0-9]{1,4}", fullmatch=True))


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    """Any valid alert, with adversarial summary, ids and evidence."""
    start_ns = draw(st.integers(min_value=0, max_value=4_000_000_000 * 1_000_000_000))
    window_ns = draw(st.integers(min_value=1, max_value=24 * HOUR_NS))
    members = tuple(draw(st.lists(sender, max_size=6, unique=True)))
    subject = draw(st.one_of(st.none(), sender))
    named = members + ((subject,) if subject is not None else ())
    labelled = draw(st.lists(st.sampled_from(named), unique=True)) if named else []
    label = st.sampled_from(["mirai", "shodan", "censys", "unknown"])
    evidence_value = st.one_of(
        st.floats(), st.integers(), adversarial_text, st.lists(st.integers(), max_size=3)
    )
    return Alert(
        alert_id=draw(st.one_of(st.text(unicode_char, min_size=1, max_size=30), st.just("dvs-0123"))),
        type=draw(st.sampled_from(list(AlertType))),
        severity=draw(st.sampled_from(list(Severity))),
        time_ns=start_ns + window_ns + draw(st.integers(min_value=0, max_value=10**9)),
        window_index=draw(st.integers(min_value=0, max_value=10**6)),
        window_start_ns=start_ns,
        window_end_ns=start_ns + window_ns,
        cluster_id=draw(st.one_of(st.none(), adversarial_text)),
        member_count=draw(st.integers(min_value=0, max_value=10**6)),
        sample_members=members,
        top_ports=tuple(
            draw(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 10**9)), max_size=5))
        ),
        summary=draw(adversarial_text),
        evidence=draw(st.dictionaries(adversarial_text, evidence_value, max_size=4)),
        labels=draw(st.dictionaries(adversarial_text, st.integers(0, 1000), max_size=3)),
        sender=subject,
        sender_labels={value: draw(label) for value in labelled},
    )
