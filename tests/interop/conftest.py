"""Fixtures of the interop tests: third-party clients installed from npm, run under node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.processes import need_service

ROOT = Path(__file__).resolve().parents[2]
OAUTH4WEBAPI_VERSION = "3.8.9"
# A prefix of its own: installing into tmo-poptoken-builder's would rewrite that package.json.
OAUTH4WEBAPI_CACHE = ROOT / ".cache" / "npm-oauth4webapi"


def _installed_version(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def oauth4webapi_module() -> Path:
    """oauth4webapi's ESM entry point, installed once into .cache/npm-oauth4webapi."""
    if not shutil.which("node") or not shutil.which("npm"):
        need_service("node/npm", "not on PATH")
    package = OAUTH4WEBAPI_CACHE / "node_modules" / "oauth4webapi"
    module = package / "build" / "index.js"
    if not module.exists() or _installed_version(package) != OAUTH4WEBAPI_VERSION:
        OAUTH4WEBAPI_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(OAUTH4WEBAPI_CACHE),
                f"oauth4webapi@{OAUTH4WEBAPI_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not module.exists():
            need_service("oauth4webapi", f"npm install failed: {result.stderr[-500:]}")
    return module
