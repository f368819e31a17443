"""One real token server with the guarded sample APIs per module (``taap serve
--with-sample-apis``) on a free loopback port, over a temporary SQLite registry and a Redis
database this suite claims for itself, so replay keys and rate-limit buckets can be read from
outside. Default settings (rate limits included): the buckets are emptied after every case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

# The kit's assertions are the suite's: show their operands when they fail.
pytest.register_assert_rewrite("adversarial_kit")

from adversarial_kit import LOCK_KEY, Arena, Client, claim_redis_db  # noqa: E402

from kit.clients import with_registry  # noqa: E402
from kit.processes import Service, start_serve  # noqa: E402
from taap.core import (  # noqa: E402
    PrivateKey,
    build_pop_token,
    generate_private_key,
    request_pairs,
)
from taap.server.registry.port import Registry  # noqa: E402

# name -> (key name, API products)
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "a": ("rsa", ("connectivity", "sms-notification", "fraud-prevention")),
    "b": ("other", ("connectivity",)),
    "v6only": ("rsa", ("fraud-prevention",)),
    "disabled": ("rsa", ("connectivity",)),
    "rotated": ("rsa", ("connectivity",)),
    "twokeys": ("rsa+third", ("connectivity",)),
}


def _register(database_url: str, keys: dict[str, PrivateKey]) -> dict[str, Client]:
    async def run(registry: Registry) -> dict[str, Client]:
        out: dict[str, Client] = {}
        for name, (key_names, apis) in CLIENTS.items():
            wanted = [keys[k] for k in key_names.split("+")]
            record, secret = await registry.create_client(
                name=f"adv-{name}", keys=[k.public for k in wanted], apis=apis
            )
            out[name] = Client(name, record.client_id, secret, wanted[0])
        return out

    return with_registry(database_url, run)


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
    database_url = f"sqlite:///{folder / 'taap.db'}"
    own_redis_url, redis_client = claim_redis_db(redis_url)
    try:
        clients = _register(database_url, {"rsa": rsa_key, "other": other_key, "third": third_key})
        # A module may run its server with other settings (e.g. the PoP policy).
        server = start_serve(
            folder,
            database_url,
            "--redis-url",
            own_redis_url,
            "--with-sample-apis",
            name="server",
            **getattr(request.module, "SERVER_ENV", {}),
        )
        try:
            yield _arena(folder, database_url, server, redis_client, own_redis_url, clients)
        finally:
            server.stop()
            text = server.log.read_text(errors="replace")
            # No stack trace and no secret may ever reach the server's output.
            assert "Traceback" not in text, text[-3000:]
            for client in clients.values():
                assert client.secret not in text
    finally:
        for key in redis_client.scan_iter(match="taap:*"):
            redis_client.delete(key)
        redis_client.delete(LOCK_KEY)
        redis_client.close()


def _arena(
    folder: Path,
    database_url: str,
    server: Service,
    redis_client: redis.Redis,
    redis_url: str,
    clients: dict[str, Client],
) -> Arena:
    """The arena of a started server, with tokens for clients a (v2 and v6) and b."""
    db_path = folder / "taap.db"
    arena = Arena(folder, database_url, db_path, server.port, server.log, redis_client, redis_url)
    arena.clients = clients
    arena.tokens["a"] = _tokens(arena, clients["a"], "v2")
    arena.tokens["a6"] = _tokens(arena, clients["a"], "v6")
    arena.tokens["b"] = _tokens(arena, clients["b"], "v2")
    return arena
