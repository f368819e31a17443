"""``taap serve --workers 2``: every worker gets the settings the parent validated, flags
included, without them passing through the environment; with ``--with-sample-apis`` the mounted
guard gets the server's settings (a float ``TAAP_JWKS_MIN_REFRESH`` once stopped every worker at
start-up; found by bench/bench_scale.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cluster_kit import DEVICE_PATH, LoadClient, Node, Recorder, jwt_part

from kit.processes import clean_env, free_port
from kit.stores import adopt_redis
from taap.core import PrivateKey
from taap.server.registry.sql import open_registry

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


async def _client(node: Node, database_url: str, pepper: str, key: PrivateKey) -> LoadClient:
    """A client registered in the node's registry, asking the node itself for tokens."""
    registry = await open_registry(database_url, pepper=pepper.encode())
    try:
        record, secret = await registry.create_client(
            name=node.name, keys=[key.public], apis=["connectivity"]
        )
    finally:
        await registry.close()
    return LoadClient(
        node.name, record.client_id, secret, key, node.base + "/oauth2/v2/tokens", Recorder()
    )


async def test_two_workers_serve_the_guarded_sample_apis(
    tmp_path: Path, redis_url: str, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    port = free_port()
    own_redis = urlunsplit(urlsplit(redis_url)._replace(path=f"/{9 + uuid.uuid4().int % 6}"))
    adopt_redis(own_redis)
    env = clean_env(
        TAAP_REDIS_URL=own_redis,
        TAAP_PEPPER="workers-test-pepper-0123456789",
        TAAP_JWKS_MIN_REFRESH="2.5",
        TAAP_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    args = ["--workers", "2", "--with-sample-apis", "--database-url", database_url]
    node = Node("workers", port, args, env, tmp_path)
    client = await _client(node, database_url, env["TAAP_PEPPER"], rsa_key)
    node.start()
    try:
        node.wait_ready()
        token = client.get_token()
        assert token is not None
        assert token.status_code == 200, token.text
        call = client.call(node.base)
        assert call is not None
        assert call.status_code == 200, call.text
        assert httpx.get(node.base + DEVICE_PATH).json()["error_code"] == "token_invalid"
    finally:
        client.close()
        node.kill()


def _worker_environments(parent: int) -> list[bytes]:
    """The environment each child process of ``parent`` was started with (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append((stat.parent / "environ").read_bytes())
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return found


async def test_a_flag_alone_reaches_every_worker(
    tmp_path: Path, redis_url: str, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    port = free_port()
    # --token-mode and --redis-url only as flags: no TAAP_TOKEN_MODE anywhere.
    env = clean_env(TAAP_PEPPER="workers-test-pepper-0123456789", TAAP_SHUTDOWN_DRAIN="0")
    args = ["--workers", "2", "--token-mode", "single", "--redis-url", redis_url]
    node = Node("flags", port, [*args, "--database-url", database_url], env, tmp_path)
    client = await _client(node, database_url, env["TAAP_PEPPER"], rsa_key)
    node.start()
    try:
        node.wait_ready()
        assert node.proc is not None
        if Path("/proc").is_dir():
            workers = _worker_environments(node.proc.pid)
            assert len(workers) >= 2
            assert not any(b"TAAP_TOKEN_MODE=" in environ for environ in workers)
        # A new connection per request until both workers (request-id prefixes) have answered.
        answered: set[str] = set()
        deadline = time.monotonic() + 30
        while len(answered) < 2 and time.monotonic() < deadline:
            request, _ = client.tokens.token_request()
            request.headers["Connection"] = "close"
            with httpx.Client(timeout=10) as http:
                response = http.send(request)
            assert response.status_code == 200, response.text
            payload = response.json()
            # single mode: the access token is returned as both tokens
            assert payload["id_token"] == payload["access_token"]
            assert jwt_part(payload["access_token"], 0)["typ"] == "at+jwt"
            answered.add(response.headers["x-request-id"].split("-")[0])
        assert len(answered) == 2
    finally:
        client.close()
        node.kill()  # SIGTERM first
    assert node.proc.returncode == 0  # a requested, completed shutdown of every worker
