"""Fixtures of the Postman tests: newman and crypto-js from npm, the collection's script."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.processes import need_service

ROOT = Path(__file__).resolve().parents[2]
NEWMAN_VERSION = "6.2.2"
# crypto-js 3.3.0 is the CryptoJS that Postman's sandbox (postman-sandbox 4.7) bundles.
CRYPTO_JS_VERSION = "3.3.0"
NEWMAN_CACHE = ROOT / ".cache" / "npm-newman"


def _installed_version(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _install() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        need_service("node/npm", "not on PATH")
    modules = NEWMAN_CACHE / "node_modules"
    wanted = {"newman": NEWMAN_VERSION, "crypto-js": CRYPTO_JS_VERSION}
    if any(_installed_version(modules / name) != version for name, version in wanted.items()):
        NEWMAN_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix"]
            + [str(NEWMAN_CACHE)]
            + [f"{name}@{version}" for name, version in wanted.items()],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            need_service("newman", f"npm install failed: {result.stderr[-500:]}")
    return modules


@pytest.fixture(scope="session")
def npm_modules() -> Path:
    """``node_modules`` holding newman and crypto-js, installed once into .cache/npm-newman."""
    return _install()


@pytest.fixture(scope="session")
def newman(npm_modules: Path) -> Path:
    return npm_modules / "newman" / "bin" / "newman.js"


@pytest.fixture(scope="session")
def crypto_js(npm_modules: Path) -> Path:
    return npm_modules / "crypto-js"
