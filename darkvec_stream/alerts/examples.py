"""Fixed example alerts, and the generator of the examples section of ``docs/alerts.md``.

The addresses come from the documentation ranges (RFC 5737 and RFC 3849),
so the examples name no real sender. Run
``python -m darkvec_stream.alerts.examples --write docs/alerts.md`` after a
rendering changes; a test fails while the document is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from darkvec_stream.alerts.formats import (
    FORMATS,
    RenderContext,
    SyslogHeader,
    octet_counted,
    render,
    syslog_message,
)
from darkvec_stream.alerts.model import Alert, AlertType, Severity, make_alert_id

BEGIN_MARKER = (
    "<!-- BEGIN GENERATED EXAMPLES: "
    "python -m darkvec_stream.alerts.examples --write docs/alerts.md -->"
)
END_MARKER = "<!-- END GENERATED EXAMPLES -->"

#: Fixed producer identity so the examples do not depend on the host.
EXAMPLE_CONTEXT = RenderContext(
    hostname="telescope-1.example.net", product_version="0.1.0", splunk_index="darknet"
)
EXAMPLE_SYSLOG_HEADER = SyslogHeader(procid="4242")

_HOUR_NS = 3600 * 1_000_000_000
_WINDOW_START_NS = 1_620_000_000 * 1_000_000_000  # 2021-05-03T00:00:00Z, an hour boundary


def new_cluster_example() -> Alert:
    """Return a new-cluster alert whose members include one Mirai-labelled sender."""
    members = ("192.0.2.10", "192.0.2.11", "192.0.2.12", "198.51.100.7", "198.51.100.9")
    return Alert(
        alert_id=make_alert_id(AlertType.NEW_CLUSTER, "C000042", "emerged@412"),
        type=AlertType.NEW_CLUSTER,
        severity=Severity.HIGH,
        time_ns=_WINDOW_START_NS + _HOUR_NS + 123_456_789,
        window_index=412,
        window_start_ns=_WINDOW_START_NS,
        window_end_ns=_WINDOW_START_NS + _HOUR_NS,
        cluster_id="C000042",
        member_count=37,
        sample_members=members,
        top_ports=((23, 1840), (2323, 611), (5555, 97)),
        summary=(
            "New cluster C000042 of 37 senders, 92% of them unknown, probes telnet "
            "ports 23 and 2323 in step."
        ),
        evidence={"unknown_share": 0.9189, "threshold": 0.5, "min_cluster_size": 10},
        labels={"unknown": 34, "mirai": 3},
        sender_labels={"192.0.2.10": "mirai"},
    )


def label_change_example() -> Alert:
    """Return a label-change alert for one IPv6 sender."""
    sender = "2001:db8::5"
    return Alert(
        alert_id=make_alert_id(AlertType.LABEL_CHANGE, sender, "unknown->shodan@412"),
        type=AlertType.LABEL_CHANGE,
        severity=Severity.LOW,
        time_ns=_WINDOW_START_NS + _HOUR_NS,
        window_index=412,
        window_start_ns=_WINDOW_START_NS,
        window_end_ns=_WINDOW_START_NS + _HOUR_NS,
        cluster_id="C000007",
        member_count=1,
        sample_members=(sender,),
        top_ports=((443, 12), (80, 9)),
        summary="Sender 2001:db8::5 changed from unknown to shodan: 6 of 7 neighbours agree.",
        evidence={"previous": "unknown", "label": "shodan", "confidence": 0.857, "k": 7},
        labels={"shodan": 1},
        sender=sender,
        sender_labels={sender: "shodan"},
    )


def example_alerts() -> tuple[Alert, ...]:
    """Return the alerts the documentation shows."""
    return (new_cluster_example(), label_change_example())


def render_examples_markdown() -> str:
    """Render every format of the cluster example, and ECS and CEF of the sender example."""
    alert = new_cluster_example()
    sections = [BEGIN_MARKER, ""]
    for format_name in FORMATS:
        payload = render(alert, format_name, EXAMPLE_CONTEXT)
        sections += [f"#### `{format_name}`", "", *_fenced(format_name, payload), ""]
    sender_alert = label_change_example()
    for format_name in ("ecs", "cef"):
        payload = render(sender_alert, format_name, EXAMPLE_CONTEXT)
        sections += [
            f"#### `{format_name}` for a sender alert (label change, IPv6 sender)",
            "",
            *_fenced(format_name, payload),
            "",
        ]
    body = render(alert, "cef", EXAMPLE_CONTEXT)
    message = syslog_message(alert, body, EXAMPLE_CONTEXT, EXAMPLE_SYSLOG_HEADER)
    sections += [
        "#### syslog (RFC 5424, TCP octet counting) carrying `cef`",
        "",
        "```text",
        octet_counted(message).decode("utf-8"),
        "```",
        "",
        END_MARKER,
    ]
    return "\n".join(sections)


def _fenced(format_name: str, payload: bytes) -> list[str]:
    text = payload.decode("utf-8")
    if format_name == "cef":
        return ["```text", text, "```"]
    pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return ["```json", pretty, "```"]


def replace_generated_section(document: str) -> str:
    """Return ``document`` with the text between the markers regenerated."""
    start = document.find(BEGIN_MARKER)
    end = document.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError("the document has no generated-examples markers")
    return document[:start] + render_examples_markdown() + document[end + len(END_MARKER):]


def main(argv: list[str] | None = None) -> int:
    """Print the generated examples, or rewrite them in place with ``--write FILE``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="markdown file whose marked section is replaced")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render_examples_markdown() + "\n")
        return 0
    args.write.write_text(replace_generated_section(args.write.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
