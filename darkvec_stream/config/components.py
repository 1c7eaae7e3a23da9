"""Check the structured settings the way each stage will read them, before anything starts.

The schema checks types and ranges; decoder presets, port maps, label source
entries and alert outputs need the stage code to be understood. This module
builds those stage objects that have no side effect (no file opened, no
socket, no thread) and turns each failure into a ``ConfigError`` that names
the setting. ``config check`` and every command call it through
``load_settings``.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Callable, Mapping

from darkvec_stream.config.schema import Settings
from darkvec_stream.errors import ConfigError, DarkvecError

SINK_KEYS: Mapping[str, frozenset[str]] = {
    "file": frozenset({"path", "fsync"}),
    "kafka": frozenset({"topic", "ack_timeout_s"}),
    "syslog": frozenset({"host", "port", "protocol", "connect_timeout_s", "max_message_bytes"}),
    "splunk-hec": frozenset({"url", "token", "timeout_s"}),
}
COMMON_SINK_KEYS = frozenset({"type", "format", "name", "max_buffered", "max_batch"})


def check_components(settings: Settings) -> None:
    """Raise ``ConfigError`` naming the setting if a stage would reject its settings."""
    _check("input.decoder_options", lambda: _decoder(settings.input.format, settings.input.decoder_options))
    _check("kafka.decoder_options", lambda: _decoder(settings.kafka.format, settings.kafka.decoder_options))
    _check("services.domain_map", lambda: _services(settings))
    _check("embedding", lambda: _embedding(settings))
    _check("labels.sources", lambda: _label_sources(settings))
    _check("alerts.rate_limits", lambda: _rate_limits(settings.alerts.rate_limits))
    for position, entry in enumerate(settings.alerts.outputs):
        _check(f"alerts.outputs[{position}]", lambda entry=entry: _alert_output(entry))
    _check("deadletter.path", lambda: _relative_path(settings.deadletter.path))


def _check(where: str, build: Callable[[], Any]) -> None:
    try:
        build()
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except (DarkvecError, ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _decoder(fmt: str, options: Mapping[str, Any]) -> None:
    from darkvec_stream.ingest import get_decoder

    get_decoder(fmt, **dict(options))


def _services(settings: Settings) -> None:
    from darkvec_stream.windows import DEFAULT_DOMAIN_SERVICES, make_services

    services = settings.services
    domain_map = {name: list(ports) for name, ports in services.domain_map.items()} or DEFAULT_DOMAIN_SERVICES
    make_services(services.mode, top_n=services.top_n, half_life_s=services.half_life_s, domain_map=domain_map)


def _embedding(settings: Settings) -> None:
    from darkvec_stream.stages import build_embedding

    build_embedding(settings)


def _label_sources(settings: Settings) -> None:
    from darkvec_stream.labels import LabelSource

    for position, entry in enumerate(settings.labels.sources):
        try:
            source = LabelSource.from_mapping(dict(entry))
        except ConfigError as error:
            raise ConfigError(f"entry {position}: {error}") from None
        if not source.path.exists():
            raise ConfigError(f"entry {position}: path {str(source.path)!r} is not found")


def _rate_limits(limits: Mapping[str, Any]) -> None:
    from darkvec_stream.alerts.model import AlertType

    allowed = [alert_type.value for alert_type in AlertType]
    for name, per_hour in limits.items():
        if name not in allowed:
            raise ConfigError(f"unknown alert type {name!r}; allowed: {', '.join(allowed)}")
        if isinstance(per_hour, bool) or not isinstance(per_hour, (int, float)) or not per_hour > 0:
            raise ConfigError(f"{name}: value {per_hour!r} must be a positive number of alerts per hour")


def _alert_output(entry: Mapping[str, Any]) -> None:
    from darkvec_stream.alerts import FORMATS

    kind = entry.get("type")
    if kind not in SINK_KEYS:
        raise ConfigError(f"type {kind!r} is invalid; allowed: {', '.join(SINK_KEYS)}")
    fmt = entry.get("format", "jsonl")
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is invalid; allowed: {', '.join(FORMATS)}")
    unknown = sorted(set(entry) - COMMON_SINK_KEYS - SINK_KEYS[kind])
    if unknown:
        allowed = sorted(COMMON_SINK_KEYS | SINK_KEYS[kind])
        raise ConfigError(f"unknown keys {unknown} for a {kind} output; allowed: {', '.join(allowed)}")
    if kind == "file":
        _relative_path(str(entry.get("path", "alerts.jsonl")))
    if kind == "splunk-hec" and not entry.get("url"):
        raise ConfigError("a splunk-hec output needs url (https://HOST:8088/services/collector/event)")


def _relative_path(path: str) -> None:
    # Output files live under output.directory, which a checkpoint cuts back
    # on restore; a path outside it would escape that guarantee.
    parts = PurePath(path).parts
    if PurePath(path).is_absolute() or ".." in parts or not parts:
        raise ConfigError(f"path {path!r} must be relative to output.directory and stay inside it")
