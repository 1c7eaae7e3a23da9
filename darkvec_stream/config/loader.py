"""Load, merge and validate settings into one read-only ``Settings`` object.

Precedence, highest first: command-line overrides, environment variables
(``DARKVEC_STREAM_<SECTION>__<KEY>``), the YAML file, then the defaults in
``schema.py``. Everything is validated before the caller does anything else,
and no error leaves a half-applied configuration behind.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import yaml

from darkvec_stream.config.schema import Settings
from darkvec_stream.errors import ConfigError

ENV_PREFIX = "DARKVEC_STREAM_"
MASK = "***"


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Iterable[str] = (),
    check_components: bool = True,
) -> Settings:
    """Build validated settings from a YAML file, the environment and overrides.

    With ``check_components`` (the default), every stage's settings are also
    checked the way the stage will read them (decoder presets, port maps,
    label source entries, alert outputs), still without any side effect.

    ``overrides`` are ``section.key=value`` strings, as given to ``--set``.
    Values from the environment and overrides are parsed as YAML scalars, so
    ``true``, ``42`` and ``[a, b]`` have their YAML types.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((str(path), _read_yaml(Path(path))))
    layers.append(("environment", _from_environ(os.environ if environ is None else environ)))
    layers.append(("command line", _from_overrides(overrides)))

    merged: dict[str, dict[str, Any]] = {}
    for origin, layer in layers:
        for section, values in layer.items():
            _check_section(section, values, origin)
            merged.setdefault(section, {}).update(values)
    settings = _build(merged)
    if check_components:
        # Imported here: the stage packages import this module.
        from darkvec_stream.config.components import check_components as check

        check(settings)
    return settings


def check_file(path: str | Path) -> Settings:
    """Validate one configuration file alone, ignoring the environment."""
    return load_settings(path, environ={})


def masked_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the settings as plain data with every secret replaced by a mask."""
    result: dict[str, dict[str, Any]] = {}
    for section_field in dataclasses.fields(settings):
        section = getattr(settings, section_field.name)
        values: dict[str, Any] = {}
        for key_field in dataclasses.fields(section):
            value = _thaw(getattr(section, key_field.name))
            if key_field.metadata.get("secret") and value:
                value = MASK
            values[key_field.name] = _mask_nested(value)
        result[section_field.name] = values
    return result


def describe(settings_type: type = Settings) -> list[tuple[str, Any, str, str]]:
    """List every setting as (key path, default, unit, help) for documentation."""
    rows = []
    for section_field in dataclasses.fields(settings_type):
        section_type = section_field.default_factory  # type: ignore[misc]
        defaults = section_type()
        for key_field in dataclasses.fields(section_type):
            rows.append(
                (
                    f"{section_field.name}.{key_field.name}",
                    getattr(defaults, key_field.name),
                    key_field.metadata.get("unit", ""),
                    key_field.metadata.get("help", ""),
                )
            )
    return rows


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a mapping of sections, got {type(data).__name__}")
    return data


def _from_environ(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):]
        if "__" not in rest:
            raise ConfigError(
                f"environment variable {name} must be named {ENV_PREFIX}<SECTION>__<KEY>, "
                f"for example {ENV_PREFIX}WINDOWS__WINDOW_S"
            )
        section, key = rest.lower().split("__", 1)
        try:
            _check_section(section, {key: raw}, "environment")
        except ConfigError as error:
            raise ConfigError(f"environment variable {name}: {str(error).partition(': ')[2]}") from None
        layer.setdefault(section, {})[key] = _parse_scalar(raw, name)
    return layer


def _from_overrides(overrides: Iterable[str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or path.count(".") != 1:
            raise ConfigError(
                f"override {item!r} must look like section.key=value, for example windows.window_s=600"
            )
        section, key = path.strip().split(".")
        layer.setdefault(section, {})[key] = _parse_scalar(raw, path)
    return layer


class RawValue(str):
    """A setting given as text (environment or ``--set``), not yet typed.

    String settings take the text as it is, so a password such as ``0777`` or
    ``#secret`` is never turned into a number or a comment. Other settings
    parse it as YAML, so ``true``, ``42`` and ``[a, b]`` get their types.
    """


def _parse_scalar(raw: str, where: str) -> Any:
    return RawValue(raw)


def _parse_raw(path: str, value: RawValue, secret: bool) -> Any:
    try:
        return yaml.safe_load(str(value)) if value.strip() else ""
    except yaml.YAMLError:
        shown = MASK if secret else repr(str(value))
        raise ConfigError(f"{path}: value {shown} is not valid YAML") from None


def _section_types() -> dict[str, type]:
    return {
        section_field.name: section_field.default_factory  # type: ignore[misc]
        for section_field in dataclasses.fields(Settings)
    }


def _check_section(section: str, values: Any, origin: str) -> None:
    sections = _section_types()
    if section not in sections:
        raise ConfigError(
            f"{origin}: unknown section {section!r}; allowed: {', '.join(sorted(sections))}"
        )
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: section {section!r} must be a mapping, got {values!r}")
    known = {key_field.name for key_field in dataclasses.fields(sections[section])}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"{origin}: unknown key {section}.{key}; allowed in {section}: {', '.join(sorted(known))}"
            )


def _build(merged: dict[str, dict[str, Any]]) -> Settings:
    sections = {}
    for name, section_type in _section_types().items():
        values = merged.get(name, {})
        checked = {}
        for key_field in dataclasses.fields(section_type):
            if key_field.name in values:
                checked[key_field.name] = _validate(name, key_field, values[key_field.name])
        sections[name] = _freeze_section(section_type(**checked))
    return Settings(**sections)


def _validate(section: str, key_field: dataclasses.Field, value: Any) -> Any:
    path = f"{section}.{key_field.name}"
    default = key_field.default if key_field.default is not dataclasses.MISSING else key_field.default_factory()  # type: ignore[misc]
    meta = key_field.metadata
    secret = bool(meta.get("secret"))
    if isinstance(value, RawValue):
        value = str(value) if isinstance(default, str) else _parse_raw(path, value, secret)
    try:
        value = _coerce(path, default, value, meta)
    except ConfigError as error:
        if secret:
            raise ConfigError(f"{path}: the value (masked) must be a string") from None
        raise error
    shown = MASK if secret else repr(value)
    if meta.get("choices") is not None and value not in meta["choices"]:
        allowed = ", ".join(repr(choice) for choice in meta["choices"])
        raise ConfigError(f"{path}: value {shown} is not allowed; allowed: {allowed}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: value {shown} must be a finite number")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ConfigError(f"{path}: value {shown} is below the minimum {meta['minimum']}{unit}")
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise ConfigError(f"{path}: value {shown} is above the maximum {meta['maximum']}{unit}")
    return value


def _coerce(path: str, default: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    expected = type(default)
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: value {value!r} must be true or false")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: value {value!r} must be an integer{_unit(meta)}")
    if expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: value {value!r} must be a number{_unit(meta)}")
    if expected is str:
        if value is None:
            return ""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{path}: value {value!r} must be a string")
    if expected is list:
        if isinstance(value, list):
            return value
        raise ConfigError(f"{path}: value {value!r} must be a list")
    if expected is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        raise ConfigError(f"{path}: value {value!r} must be a mapping")
    return value


def _unit(meta: Mapping[str, Any]) -> str:
    return f" ({meta['unit']})" if meta.get("unit") else ""


def _freeze_section(section: Any) -> Any:
    # Frozen dataclasses still hand out mutable lists and dicts, so nested
    # values are replaced by tuples and read-only mappings.
    for key_field in dataclasses.fields(section):
        object.__setattr__(section, key_field.name, _freeze(getattr(section, key_field.name)))
    return section


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    return value


_SECRET_KEYS = ("password", "token", "secret", "key_password", "api_key")


def _mask_nested(value: Any) -> Any:
    # Secrets inside free-form lists (alert outputs, label sources) are masked
    # by key name, because the schema cannot mark them one by one.
    if isinstance(value, list):
        return [_mask_nested(item) for item in value]
    if isinstance(value, dict):
        return {
            key: (MASK if any(word in str(key).lower() for word in _SECRET_KEYS) and item else _mask_nested(item))
            for key, item in value.items()
        }
    return value
