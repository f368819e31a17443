"""One real token server with the guarded sample APIs per module (``taap serve
--with-sample-apis``) on a free loopback port, over a temporary SQLite registry and a Redis
database this suite claims for itself, so replay keys and rate-limit buckets can be read from
outside. Default settings (rate limits included): the buckets are emptied after every case.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# The kit's assertions are the suite's: show their operands when they fail.
pytest.register_assert_rewrite("adversarial_kit")

from adversarial_kit import LOCK_KEY, Arena, Client, claim_redis_db  # noqa: E402

from taap.core import (  # noqa: E402
    PrivateKey,
    build_pop_token,
    generate_private_key,
    request_pairs,
)
from taap.server.registry.database import parse_database_url  # noqa: E402
from taap.server.registry.pepper import load_pepper  # noqa: E402
from taap.server.registry.sql import open_registry  # noqa: E402

TAAP = str(Path(sys.executable).parent / "taap")

# name -> (key name, API products)
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "a": ("rsa", ("connectivity", "sms-notification", "fraud-prevention")),
    "b": ("other", ("connectivity",)),
    "v6only": ("rsa", ("fraud-prevention",)),
    "disabled": ("rsa", ("connectivity",)),
    "rotated": ("rsa", ("connectivity",)),
    "twokeys": ("rsa+third", ("connectivity",)),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register(database_url: str, keys: dict[str, PrivateKey]) -> dict[str, Client]:
    async def run() -> dict[str, Client]:
        pepper = load_pepper(parse_database_url(database_url))
        registry = await open_registry(database_url, pepper=pepper)
        try:
            out: dict[str, Client] = {}
            for name, (key_names, apis) in CLIENTS.items():
                wanted = [keys[k] for k in key_names.split("+")]
                record, secret = await registry.create_client(
                    name=f"adv-{name}", keys=[k.public for k in wanted], apis=apis
                )
                out[name] = Client(name, record.client_id, secret, wanted[0])
            return out
        finally:
            await registry.close()

    return asyncio.run(run())


def _tokens(arena: Arena, client: Client, version: str) -> dict[str, str]:
    path = f"/oauth2/{version}/tokens"
    base = [("Content-Type", "application/json"), ("Authorization", client.basic)]
    body = b""
    if version == "v6":
        body = json.dumps(
            {
                "client_id": client.client_id,
                "client_secret": client.secret,
                "scope": "response_mode",
                "grant-type": "client_credentials",
            }
        ).encode()
    pop = build_pop_token(request_pairs("POST", path, base, body), client.key)
    response = httpx.post(
        arena.base + path, headers={**dict(base), "X-Authorization": pop}, content=body
    )
    assert response.status_code == 200, response.text
    data: dict[str, str] = response.json()
    return data


@pytest.fixture(scope="session")
def third_key() -> PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def arena(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    rsa_key: PrivateKey,
    other_key: PrivateKey,
    third_key: PrivateKey,
) -> Iterator[Arena]:
    folder = tmp_path_factory.mktemp("adversarial")
    db_path = folder / "taap.db"
    database_url = f"sqlite:///{db_path}"
    own_redis_url, redis_client = claim_redis_db(redis_url)
    clients = _register(database_url, {"rsa": rsa_key, "other": other_key, "third": third_key})
    port = _free_port()
    log = folder / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env["TAAP_KEY_REFRESH"] = "0"
    env["TAAP_SHUTDOWN_DRAIN"] = "0"  # no load balancer to drain from: stop at once
    # A module may run its server with other settings (e.g. the PoP policy).
    env.update(getattr(request.module, "SERVER_ENV", {}))
    cmd = [
        TAAP,
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--redis-url",
        own_redis_url,
        "--with-sample-apis",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    arena = Arena(folder, database_url, db_path, port, log, redis_client, own_redis_url, clients)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"taap serve exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(arena.base + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"taap serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        arena.tokens["a"] = _tokens(arena, clients["a"], "v2")
        arena.tokens["a6"] = _tokens(arena, clients["a"], "v6")
        arena.tokens["b"] = _tokens(arena, clients["b"], "v2")
        yield arena
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for key in redis_client.scan_iter(match="taap:*"):
            redis_client.delete(key)
        redis_client.delete(LOCK_KEY)
        redis_client.close()
        text = log.read_text(errors="replace")
        # No stack trace and no secret may ever reach the server's output.
        assert "Traceback" not in text, text[-3000:]
        for client in clients.values():
            assert client.secret not in text
