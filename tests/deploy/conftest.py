"""Fixtures for the deployment tests: the validator module from deploy/validate.py."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

VALIDATE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "validate.py"
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def validate() -> ModuleType:
    """deploy/validate.py loaded as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_validate", VALIDATE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def require_tool(validate: ModuleType, function, *args):  # type: ignore[no-untyped-def]
    """Call ``function``; skip when its tool is missing, except in CI, where the tool must be installed."""
    try:
        return function(*args)
    except validate.ToolMissing as missing:
        if IN_CI:
            pytest.fail(f"CI must install this tool: {missing}")
        pytest.skip(str(missing))
