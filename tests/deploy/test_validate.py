"""The offline deployment validations pass on deploy/ and fail on broken copies of it."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import VALIDATE_PATH, require_tool

DEPLOY = VALIDATE_PATH.parent


def _check_names() -> list[str]:
    source = VALIDATE_PATH.read_text()
    block = source.split("CHECKS: tuple[Callable[[], CheckResult], ...] = (", 1)[1].split(")", 1)[0]
    return [name.strip() for name in block.replace("\n", " ").split(",") if name.strip()]


@pytest.mark.parametrize("check_name", _check_names())
def test_check_passes_on_deploy(validate: ModuleType, check_name: str) -> None:
    result = require_tool(validate, getattr(validate, check_name))
    assert result.status == "pass", result.line()


@pytest.mark.parametrize(("environment", "expected"), [({"CI": "true"}, "FAIL"), ({"CI": ""}, "SKIP")])
def test_validate_command_missing_tool(environment: dict[str, str], expected: str) -> None:
    # An empty PATH hides promtool; the command must then skip, or fail in CI.
    command = [sys.executable, str(VALIDATE_PATH), "--only", "check_promtool_rules"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "", **environment})
    lines = completed.stdout.splitlines()
    assert lines[0].startswith(f"{expected} promtool_rules: promtool not found"), completed.stdout + completed.stderr
    assert completed.returncode == (1 if expected == "FAIL" else 0)


def test_validate_command_passes() -> None:
    command = [sys.executable, str(VALIDATE_PATH), "--only", "check_compose_policy", "--only", "check_dockerfile"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert completed.stdout.splitlines()[-1] == "deploy checks passed: 2, failed: 0, skipped: 0", completed.stdout
    assert completed.returncode == 0


# -- compose -------------------------------------------------------------------


@pytest.fixture
def compose(validate: ModuleType) -> dict[str, Any]:
    return validate.load_compose()


def test_compose_rejects_public_port(validate: ModuleType, compose: dict[str, Any]) -> None:
    compose["services"]["daemon"]["ports"] = ["9108:9108"]
    problems = validate.compose_problems(compose)
    assert any("daemon: published port '9108:9108'" in problem for problem in problems), problems


def test_compose_rejects_unpinned_image(validate: ModuleType, compose: dict[str, Any]) -> None:
    compose["services"]["grafana"]["image"] = "grafana/grafana:latest"
    problems = validate.compose_problems(compose)
    assert any("grafana: image 'grafana/grafana:latest' is not pinned" in problem for problem in problems), problems


def test_compose_rejects_inline_password(validate: ModuleType, compose: dict[str, Any]) -> None:
    compose["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] = "admin"
    problems = validate.compose_problems(compose)
    assert any("GF_SECURITY_ADMIN_PASSWORD holds a secret inline" in problem for problem in problems), problems


def test_compose_rejects_plain_depends_on(validate: ModuleType, compose: dict[str, Any]) -> None:
    compose["services"]["daemon"]["depends_on"] = ["kafka"]
    problems = validate.compose_problems(compose)
    assert any("daemon: depends_on kafka waits for 'service_started'" in problem for problem in problems), problems


def test_compose_requires_scaleout_profile(validate: ModuleType, compose: dict[str, Any]) -> None:
    del compose["services"]["trainer"]["profiles"]
    problems = validate.compose_problems(compose)
    assert "trainer: not in profile 'scaleout'" in problems


def test_compose_schema_rejects_bad_key(validate: ModuleType, tmp_path: Path) -> None:
    broken = (DEPLOY / "docker-compose.yml").read_text().replace("    restart: unless-stopped\n", "    restrat: always\n", 1)
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken)
    result = require_tool(validate, validate.check_compose_schema, path)
    assert result.status == "fail"
    assert "restrat" in result.detail


def test_compose_config_rejects_bad_port(validate: ModuleType, tmp_path: Path) -> None:
    broken = (DEPLOY / "docker-compose.yml").read_text().replace('"127.0.0.1:9090:9090"', "[9090]", 1)
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("node_modules"))
    path = tmp_path / "deploy" / "docker-compose.yml"
    path.write_text(broken)
    result = require_tool(validate, validate.check_compose_config, path)
    assert result.status == "fail", result.line()


def test_settings_reject_misspelt_variable(validate: ModuleType, compose: dict[str, Any]) -> None:
    from darkvec_stream.config import load_settings
    from darkvec_stream.errors import ConfigError

    environment = validate.darkvec_environment(compose)
    assert environment["DARKVEC_STREAM_METRICS__HOST"] == "0.0.0.0"
    environment["DARKVEC_STREAM_METRICS__HSOT"] = "0.0.0.0"
    with pytest.raises(ConfigError, match="hsot"):
        load_settings(DEPLOY / "config.production.yaml", environ=environment)


# -- Prometheus ----------------------------------------------------------------


def test_rule_tests_fail_on_changed_threshold(validate: ModuleType, tmp_path: Path) -> None:
    rules = (DEPLOY / "prometheus" / "darkvec-stream-rules.yml").read_text()
    assert "> 0.05" in rules
    (tmp_path / "darkvec-stream-rules.yml").write_text(rules.replace("> 0.05", "> 0.5"))
    shutil.copy(DEPLOY / "prometheus" / "rules.test.yml", tmp_path / "rules.test.yml")
    result = require_tool(validate, validate.check_promtool_test, tmp_path / "rules.test.yml")
    assert result.status == "fail"
    assert "DarkvecRejectRateHigh" in result.detail


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket[1h])))", {"a_seconds_bucket"}),
        ('time() - b_timestamp_seconds{job="x", instance=~"d.*"} > 2 * 3600', {"b_timestamp_seconds"}),
        ("sum by (instance, topic) (c_records) > 1e5 and sum without (partition) (deriv(c_records[15m])) > 0",
         {"c_records"}),
        ("d_total / clamp_min(e_total offset 5m, 1) unless on (instance) f", {"d_total", "e_total", "f"}),
    ],
)
def test_metric_names_in_expression(validate: ModuleType, expression: str, names: set[str]) -> None:
    assert validate.metric_names_in(expression) == names


def test_unknown_metric_is_reported(validate: ModuleType) -> None:
    known = validate.registry_names()
    assert "darkvec_records_consumed_total" in known
    assert "darkvec_window_close_duration_seconds_bucket" in known
    missing = validate.unknown_metrics(["rate(darkvec_records_consumd_total[5m])"], known)
    assert missing == {"rate(darkvec_records_consumd_total[5m])": {"darkvec_records_consumd_total"}}


# -- Grafana -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard_schema(validate: ModuleType) -> dict[str, Any]:
    return require_tool(validate, validate.dashboard_schema)


@pytest.fixture
def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "darkvec-stream-dashboard.json").read_text())


def test_dashboard_matches_schema(validate: ModuleType, dashboard_schema: dict[str, Any],
                                  dashboard: dict[str, Any]) -> None:
    assert validate.dashboard_errors(dashboard, dashboard_schema) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda d: d["panels"][0].update(gridPos="top"), "panels/0/gridPos"),
        (lambda d: d.update(refrsh="1m"), "refrsh"),
        (lambda d: d.pop("schemaVersion"), "schemaVersion"),
        (lambda d: d["panels"][1].update(targets={"expr": "x"}), "panels/1/targets"),
    ],
    ids=["grid-position-string", "misspelt-key", "no-schema-version", "targets-not-list"],
)
def test_dashboard_schema_rejects(validate: ModuleType, dashboard_schema: dict[str, Any],
                                  dashboard: dict[str, Any], mutation: Any, expected: str) -> None:
    broken = copy.deepcopy(dashboard)
    mutation(broken)
    errors = validate.dashboard_errors(broken, dashboard_schema)
    assert any(expected in error for error in errors), errors


# -- Dockerfile and systemd ----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("USER 10001:10001", "USER root", "non-root USER"),
        ("FROM python:3.11.13-slim-bookworm AS build", "FROM python:3.11-slim AS build", "not pinned"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
        ("COPY deploy/config.production.yaml", "ADD https://example.invalid/config.yaml", "ADD fetches a URL"),
        ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 KAFKA_PASSWORD=hunter2", "ENV names a secret"),
    ],
)
def test_dockerfile_rule_catches(validate: ModuleType, old: str, new: str, expected: str) -> None:
    pytest.importorskip("dockerfile_parse")
    content = (DEPLOY / "Dockerfile").read_text()
    assert old in content
    problems = validate.dockerfile_problems(content.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


def test_systemd_verify_rejects_unknown_key(validate: ModuleType, tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "darkvec-stream.service").read_text()
    (tmp_path / "darkvec-stream.service").write_text(unit.replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = require_tool(validate, validate.check_systemd, tmp_path)
    assert result.status == "fail"
    assert "ProtectSystm" in result.detail


def test_units_are_hardened() -> None:
    required = ("NoNewPrivileges=true", "ProtectSystem=strict", "ReadWritePaths=", "User=darkvec",
                "Restart=on-failure", "CapabilityBoundingSet=\n", "KillSignal=SIGTERM")
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) == 4
    for unit in units:
        text = unit.read_text()
        missing = [setting for setting in required if setting not in text]
        assert missing == [], f"{unit.name} lacks {missing}"


def test_compose_env_file_selects_single(compose: dict[str, Any]) -> None:
    environment = dict(
        line.split("=", 1) for line in (DEPLOY / ".env").read_text().splitlines() if line and not line.startswith("#")
    )
    assert environment["COMPOSE_PROFILES"] == "single"
    assert yaml.safe_dump(compose["services"]["daemon"]["profiles"]).strip() == "- single"
