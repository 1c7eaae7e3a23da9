"""Alerts as STIX 2.1 bundles, built and validated by the ``stix2`` library.

A bundle contains the producer identity, one indicator per sender with a
confident label (``Alert.sender_labels``), an observed-data object with the
IP addresses the alert names, a grouping of those, and a note with the
summary and evidence. Every id is a UUIDv5 of the alert id, and object times
are the alert time, so re-rendering an alert yields identical objects.
Anonymised sender tokens are not IP addresses and get no STIX object.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import orjson
import stix2

from darkvec_stream.alerts.formats.common import (
    RenderContext,
    alert_title,
    ip_version,
    json_safe,
    utc_datetime,
)
from darkvec_stream.alerts.model import Alert

#: Namespace of every UUIDv5 this module derives; changing it changes all ids.
STIX_NAMESPACE = uuid.UUID("5b0f7c52-8c3e-4b7a-9d1e-3f6a2c9e4d10")

#: The identity object is the same for every alert, so its timestamp is fixed
#: instead of taken from the alert (one id must not carry two versions).
IDENTITY_CREATED = datetime(2021, 1, 1, tzinfo=timezone.utc)


def stix_bundle(alert: Alert, context: RenderContext) -> stix2.Bundle:
    """Build the validated STIX 2.1 bundle for one alert."""
    identity = _identity(context)
    when = utc_datetime(alert.time_ns)
    common: dict[str, Any] = {
        "created": when,
        "modified": when,
        "created_by_ref": identity.id,
        "allow_custom": False,
    }

    addresses = _addresses(alert)
    indicators = [
        _indicator(alert, sender, label, common)
        for sender, label in sorted(alert.sender_labels.items())
        if ip_version(sender) is not None
    ]
    grouped: list[Any] = list(indicators)
    objects: list[Any] = [identity, *addresses, *indicators]

    if addresses:
        observed = stix2.v21.ObservedData(
            id=_stix_id("observed-data", alert.alert_id),
            first_observed=utc_datetime(alert.window_start_ns),
            last_observed=utc_datetime(alert.window_end_ns),
            number_observed=1,
            object_refs=[address.id for address in addresses],
            **common,
        )
        objects.append(observed)
        grouped.append(observed)

    note_refs = [identity.id]
    if grouped:
        grouping = stix2.v21.Grouping(
            id=_stix_id("grouping", alert.alert_id),
            name=alert_title(alert),
            description=alert.summary,
            context="suspicious-activity",
            object_refs=[item.id for item in grouped],
            **common,
        )
        objects.append(grouping)
        note_refs = [grouping.id]

    objects.append(_note(alert, note_refs, common))
    return stix2.v21.Bundle(
        objects=objects, id=_stix_id("bundle", alert.alert_id), allow_custom=False
    )


def render_stix(alert: Alert, context: RenderContext) -> bytes:
    """Render one alert as a compact STIX 2.1 bundle (UTF-8 JSON)."""
    document = orjson.loads(stix_bundle(alert, context).serialize())
    return orjson.dumps(document)


def _stix_id(object_type: str, *parts: str) -> str:
    return f"{object_type}--{uuid.uuid5(STIX_NAMESPACE, '|'.join((object_type, *parts)))}"


def _identity(context: RenderContext) -> stix2.v21.Identity:
    return stix2.v21.Identity(
        id=_stix_id("identity", context.vendor, context.product),
        name=context.product,
        identity_class="system",
        created=IDENTITY_CREATED,
        modified=IDENTITY_CREATED,
        allow_custom=False,
    )


def _addresses(alert: Alert) -> list[Any]:
    named = ([alert.sender] if alert.sender is not None else []) + list(alert.sample_members)
    addresses: list[Any] = []
    for value in dict.fromkeys(named):
        version = ip_version(value)
        if version == 4:
            addresses.append(stix2.v21.IPv4Address(value=value, allow_custom=False))
        elif version == 6:
            addresses.append(stix2.v21.IPv6Address(value=value, allow_custom=False))
    return addresses


def _indicator(alert: Alert, sender: str, label: str, common: dict[str, Any]) -> Any:
    object_type = "ipv4-addr" if ip_version(sender) == 4 else "ipv6-addr"
    malicious = label.lower().startswith("mirai")
    return stix2.v21.Indicator(
        id=_stix_id("indicator", alert.alert_id, sender),
        name=f"Darknet sender {sender} labelled {label}",
        description=(
            f"darkvec-stream labelled darknet sender {sender} as {label} "
            f"in window {alert.window_index}. {alert.summary}"
        ),
        indicator_types=["malicious-activity" if malicious else "anomalous-activity"],
        pattern=f"[{object_type}:value = '{sender}']",
        pattern_type="stix",
        valid_from=utc_datetime(alert.time_ns),
        labels=[label],
        **common,
    )


def _note(alert: Alert, object_refs: list[str], common: dict[str, Any]) -> Any:
    evidence = orjson.dumps(json_safe(alert.evidence)).decode("utf-8")
    ports = ", ".join(f"{port} ({packets} packets)" for port, packets in alert.top_ports)
    content = "\n".join(
        [
            alert.summary,
            f"alert id: {alert.alert_id}",
            f"cluster: {alert.cluster_id or 'none'}, members: {alert.member_count}",
            f"window {alert.window_index}",
            f"top ports: {ports or 'none'}",
            f"evidence: {evidence}",
        ]
    )
    return stix2.v21.Note(
        id=_stix_id("note", alert.alert_id),
        abstract=alert_title(alert),
        content=content,
        object_refs=object_refs,
        **common,
    )
