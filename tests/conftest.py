"""Shared fixtures: T-Mobile's vectors, keys, and the real services CI starts.

A test that needs a service (PostgreSQL, Redis, nginx, node/npm) asks for its fixture. Redis and
PostgreSQL come from ``TAAP_TEST_REDIS_URL`` / ``TAAP_TEST_POSTGRES_URL``, else throwaway servers
started from the installed binaries (kit/services.py). Locally a missing service skips the test;
with ``CI=true`` it FAILS, so CI can never pass by skipping.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.processes import need_service
from taap.core import PrivateKey, generate_private_key, load_private_key

ROOT = Path(__file__).resolve().parent.parent
VECTORS_PATH = ROOT / "tests" / "vectors" / "tmo-vectors.json"
NPM_CACHE = ROOT / ".cache" / "npm"
TMO_BUILDER_VERSION = "1.0.0"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text())


@pytest.fixture(scope="session")
def demo_key(vectors: dict[str, Any]) -> PrivateKey:
    """T-Mobile's published demo key (the npm builder's and the Java readme's)."""
    return load_private_key(vectors["keys"][0]["pem"])


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="session")
def other_key() -> PrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``TAAP_TEST_POSTGRES_URL``, else a throwaway server from the installed binaries."""
    url = os.environ.get("TAAP_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from kit.services import throwaway_postgres

    with throwaway_postgres() as started:
        yield started


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``TAAP_TEST_REDIS_URL``, else a throwaway ``redis-server`` on a free port."""
    from kit.stores import adopt_redis  # imports redis-py, which only these tests need

    url = os.environ.get("TAAP_TEST_REDIS_URL")
    if url:
        adopt_redis(url)
        yield url
        return
    from kit.services import throwaway_redis

    with throwaway_redis() as started:
        adopt_redis(started)
        yield started


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    path = os.environ.get("TAAP_TEST_NGINX") or shutil.which("nginx")
    if not path:
        need_service("nginx", "not installed (.ci/run installs it)")
    assert path
    return path


@pytest.fixture(scope="session")
def tmo_builder_dir() -> Path:
    """T-Mobile's npm builder, installed once into .cache/npm (node is on the machine)."""
    if not shutil.which("node") or not shutil.which("npm"):
        need_service("node/npm", "not on PATH")
    module = NPM_CACHE / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js"
    if not module.exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(NPM_CACHE),
                f"tmo-poptoken-builder@{TMO_BUILDER_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not module.exists():
            need_service("tmo-poptoken-builder", f"npm install failed: {result.stderr[-500:]}")
    return NPM_CACHE


@pytest.fixture(autouse=True)
def own_token_cache(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each test's ``taap token`` / ``taap call`` keep their tokens in a cache folder of their
    own (``$XDG_CACHE_HOME/taap``), never the user's and never another test's: a token kept
    by one test would spare the next its token request. Processes started with the test's
    environment (``clean_env``) inherit it."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache" / digest))
