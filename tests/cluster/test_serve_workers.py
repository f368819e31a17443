"""``taap serve --workers 2 --with-sample-apis``: the workers rebuild their settings from the
environment the parent exported, and the mounted guard gets the server's settings (a float
``TAAP_JWKS_MIN_REFRESH`` once stopped every worker at start-up; found by bench/bench_scale.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cluster_kit import DEVICE_PATH, LoadClient, Node, Recorder, clean_env, free_port

from taap.core import PrivateKey
from taap.server.sql import open_registry

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


async def test_two_workers_serve_the_guarded_sample_apis(
    tmp_path: Path, redis_url: str, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    port = free_port()
    env = clean_env(
        TAAP_REDIS_URL=urlunsplit(
            urlsplit(redis_url)._replace(path=f"/{9 + uuid.uuid4().int % 6}")
        ),
        TAAP_PEPPER="workers-test-pepper-0123456789",
        TAAP_JWKS_MIN_REFRESH="2.5",
        TAAP_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    registry = await open_registry(database_url, pepper=env["TAAP_PEPPER"].encode())
    try:
        record, secret = await registry.create_client(
            name="workers", keys=[rsa_key.public], apis=["connectivity"]
        )
    finally:
        await registry.close()
    node = Node(
        "workers",
        port,
        ["--workers", "2", "--with-sample-apis", "--database-url", database_url],
        env,
        tmp_path,
    )
    node.start()
    try:
        node.wait_ready()
        client = LoadClient(
            "w", record.client_id, secret, rsa_key, node.base + "/oauth2/v2/tokens", Recorder()
        )
        try:
            token = client.get_token()
            assert token is not None
            assert token.status_code == 200, token.text
            call = client.call(node.base)
            assert call is not None
            assert call.status_code == 200, call.text
        finally:
            client.close()
        assert httpx.get(node.base + DEVICE_PATH).json()["error_code"] == "token_invalid"
    finally:
        node.kill()
