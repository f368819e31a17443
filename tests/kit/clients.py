"""The registry a running token server uses, and clients registered in it that perform steps 1-4
by hand (every byte visible to the test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx

from kit.processes import clean_env, start_serve, taap_ok
from kit.wire import basic
from taap.core import PrivateKey, build_pop_token, request_pairs
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import Registry
from taap.server.registry.sql import open_registry

__all__ = [
    "V2_TOKENS",
    "Client",
    "ServedClient",
    "create_client_with_cli",
    "register_client",
    "register_clients",
    "serve_with_a_client",
    "token_headers",
    "with_registry",
]

T = TypeVar("T")
V2_TOKENS = "/oauth2/v2/tokens"


def with_registry(
    database_url: str,
    work: Callable[[Registry], Awaitable[T]],
    *,
    environ: Mapping[str, str] | None = None,
    key_password: bytes | None = None,
    migrate: bool = True,
) -> T:
    """Run ``work`` on the registry the token server uses, on a loop of its own (opened and
    closed around it). The pepper comes from ``environ``'s ``TAAP_PEPPER`` or, for a SQLite
    file, the pepper file beside it, as the server finds it. ``migrate=False``: only read a
    schema that is already current."""

    async def run() -> T:
        database = parse_database_url(database_url)
        pepper = load_pepper(database, (environ or {}).get("TAAP_PEPPER"))
        registry = await open_registry(
            database, pepper=pepper, key_password=key_password, migrate=migrate
        )
        try:
            return await work(registry)
        finally:
            await registry.close()

    return asyncio.run(run())


def token_headers(
    client_id: str, secret: str, key: PrivateKey, path: str = V2_TOKENS, body: str | bytes = b""
) -> dict[str, str]:
    """Headers of a token request with a fresh step-1 PoP over ``path`` and ``body``."""
    base = [("Content-Type", "application/json"), ("Authorization", basic(client_id, secret))]
    pop = build_pop_token(request_pairs("POST", path, base, body), key)
    return {**dict(base), "X-Authorization": pop}


@dataclass
class Client:
    """A registered client that builds its requests from the core."""

    client_id: str
    secret: str
    key: PrivateKey
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    @property
    def basic(self) -> str:
        return basic(self.client_id, self.secret)

    def token_headers(self, path: str = V2_TOKENS, body: str | bytes = b"") -> dict[str, str]:
        return token_headers(self.client_id, self.secret, self.key, path, body)

    def token_response(self, token_url: str) -> httpx.Response:
        headers = self.token_headers(httpx.URL(token_url).raw_path.decode())
        return self.http.post(token_url, headers=headers)

    def tokens(self, token_url: str) -> dict[str, Any]:
        response = self.token_response(token_url)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def headers(
        self,
        method: str,
        target: str,
        access_token: str,
        body: bytes = b"",
        *,
        key: PrivateKey | None = None,
        now: float | None = None,
    ) -> dict[str, str]:
        """Headers of a step-4 call with a fresh step-3 PoP."""
        base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {access_token}")]
        pairs = request_pairs(method, unquote(target), base, body)
        pop = build_pop_token(pairs, key or self.key, now=now)
        return {**dict(base), "X-Authorization": pop}

    def call(self, method: str, url: str, access_token: str, body: bytes = b"") -> httpx.Response:
        target = httpx.URL(url).raw_path.decode()
        headers = self.headers(method, target, access_token, body)
        return self.http.request(method, url, headers=headers, content=body)


def register_clients(
    database_url: str,
    wanted: Mapping[str, tuple[PrivateKey, Sequence[str]]],
    *,
    environ: Mapping[str, str] | None = None,
    key_password: bytes | None = None,
) -> dict[str, Client]:
    """Register each ``name: (key, apis)`` of ``wanted`` (the name is the client's name too)."""

    async def create(registry: Registry) -> dict[str, Client]:
        made: dict[str, Client] = {}
        for name, (key, apis) in wanted.items():
            record, secret = await registry.create_client(name=name, keys=[key.public], apis=apis)
            made[name] = Client(record.client_id, secret, key)
        return made

    return with_registry(database_url, create, environ=environ, key_password=key_password)


def register_client(
    database_url: str,
    key: PrivateKey,
    apis: Sequence[str],
    name: str = "e2e",
    *,
    environ: Mapping[str, str] | None = None,
    key_password: bytes | None = None,
) -> Client:
    """One client named ``name`` with ``key``, subscribed to ``apis``."""
    made = register_clients(
        database_url, {name: (key, apis)}, environ=environ, key_password=key_password
    )
    return made[name]


def create_client_with_cli(
    database_url: str,
    key: PrivateKey,
    apis: Sequence[str],
    *,
    folder: Path,
    env: Mapping[str, str],
    name: str = "e2e",
) -> tuple[str, str]:
    """``taap clients create --json`` as an operator runs it; the client id and secret."""
    public = folder / f"{name}-public.pem"
    public.write_bytes(key.public.to_pem())
    subscriptions = [option for api in apis for option in ("--api", api)]
    out = taap_ok(
        "clients",
        "create",
        "--name",
        name,
        "--public-key",
        str(public),
        *subscriptions,
        "--json",
        "--database-url",
        database_url,
        env=env,
        cwd=folder,
    )
    created = json.loads(out)
    return created["client_id"], created["client_secret"]


@dataclass
class ServedClient:
    """A ``taap serve --with-sample-apis`` and a client registered with the CLI, for tests that
    drive ``taap`` as a user would."""

    base: str
    client_id: str
    secret: str
    key_file: str
    env: dict[str, str]


@contextmanager
def serve_with_a_client(
    tmp: Path, key: PrivateKey, apis: list[str], name: str
) -> Iterator[ServedClient]:
    """Start the server in ``tmp`` (SQLite), register ``name`` for ``apis`` with ``key``, and
    stop the server on the way out."""
    database = f"sqlite:///{tmp / 'taap.db'}"
    env = clean_env(XDG_CONFIG_HOME=str(tmp / "xdg"))
    server = start_serve(tmp, database, "--with-sample-apis", name="serve", env=env)
    try:
        key_file = tmp / "client.pem"
        key_file.write_bytes(key.to_pem())
        client_id, secret = create_client_with_cli(
            database, key, apis, folder=tmp, env=env, name=name
        )
        yield ServedClient(server.url, client_id, secret, str(key_file), env)
    finally:
        server.stop()
