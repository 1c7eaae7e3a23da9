"""The examples in docs/alerts.md are the current renderings of the example alerts."""

from __future__ import annotations

from pathlib import Path

from darkvec_stream.alerts.examples import (
    BEGIN_MARKER,
    END_MARKER,
    example_alerts,
    render_examples_markdown,
)

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def test_docs_examples_are_current() -> None:
    text = DOCUMENT.read_text()
    assert BEGIN_MARKER in text
    assert END_MARKER in text
    assert render_examples_markdown() in text, (
        "docs/alerts.md is stale; run "
        "python -m darkvec_stream.alerts.examples --write docs/alerts.md"
    )


def test_examples_use_documentation_addresses() -> None:
    prefixes = ("192.0.2.", "198.51.100.", "203.0.113.", "2001:db8:")
    for alert in example_alerts():
        for member in (*alert.sample_members, *([alert.sender] if alert.sender else [])):
            assert member.startswith(prefixes), member
