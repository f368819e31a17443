"""A cluster for the live-authorization tests: two ``taap serve --with-sample-apis`` nodes on
one PostgreSQL registry and one Redis, nginx in front (``cluster_kit``), and a separate
``taap sample-api`` that trusts the cluster through nginx and shares its Redis.

Three guards answer the same calls: node A's and node B's in-process guards (they read the
registry's revocation log themselves) and the separate one (it reads the feed through nginx).
Every process runs with ``TAAP_REVOCATION_MAX_AGE`` = :data:`MAX_AGE`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cluster_kit import Nginx, Node, start_nginx

from kit.clients import Client, register_clients, with_registry
from kit.processes import Service, clean_env, free_port, start_sample_api, taap_ok
from kit.wire import basic, jwt_part
from taap.core import PrivateKey, build_pop_token, issue_access_token, request_pairs
from taap.server.registry.port import Registry
from taap.server.tokens.minting import id_token_jti

__all__ = [
    "BOTH",
    "MAX_AGE",
    "PRODUCTS",
    "REVOKE",
    "Cluster",
    "Token",
    "answer",
    "cluster_running",
    "revoke_request",
]

#: TAAP_REVOCATION_MAX_AGE of every process here (5 s by default), kept short for run time
MAX_AGE = 2.0
TOKENS = "/oauth2/v2/tokens"
REVOKE = "/oauth2/v1/revoke"
INTROSPECT = "/oauth2/v1/introspect"
FEED = "/oauth2/v1/revocations"
SMS_BODY = b'{"to": "+14255550100", "text": "revocation cluster"}'
#: product -> (method, path, body, status of an accepted call)
PRODUCTS: dict[str, tuple[str, str, bytes, int]] = {
    "connectivity": ("GET", "/iot-connectivity/v1/devices/8901260000000000001", b"", 200),
    "sms-notification": ("POST", "/sms/v1/messages", SMS_BODY, 201),
}
BOTH = tuple(PRODUCTS)


def answer(response: httpx.Response) -> tuple[int, str]:
    """``(status, error_code)``; the code is "" for a success."""
    if response.status_code < 400:
        return response.status_code, ""
    try:
        return response.status_code, str(response.json().get("error_code"))
    except ValueError:
        return response.status_code, f"non-JSON {response.text[:80]!r}"


def revoke_request(client: Client, token: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of an RFC 7009 revocation by ``client``: Basic and a PoP over it."""
    body = urlencode({"token": token, "token_type_hint": "access_token"}).encode()
    base = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", client.basic),
    ]
    pop = build_pop_token(request_pairs("POST", REVOKE, base, body), client.key)
    return {**dict(base), "X-Authorization": pop}, body


@dataclass(frozen=True)
class Token:
    """An access token a test holds, with what the guards judge it by."""

    owner: str
    client: Client
    access: str
    jti: str
    iat: int
    exp: int
    apis: tuple[str, ...]
    asked: float = 0.0  # monotonic: the token request was sent
    received: float = 0.0  # monotonic: its answer had arrived

    @property
    def id_jti(self) -> str:
        """The ``jti`` of the ID token of the same answer (revoked with the access token)."""
        return id_token_jti(self.jti)

    @classmethod
    def of(
        cls, owner: str, client: Client, access: str, asked: float = 0.0, received: float = 0.0
    ) -> Token:
        claims = jwt_part(access, 1)
        apis = tuple(claims["apis"])
        jti, iat, exp = claims["jti"], claims["iat"], claims["exp"]
        return cls(owner, client, access, jti, iat, exp, apis, asked, received)


@dataclass
class Cluster:
    """The running processes and the ways a test reaches them."""

    folder: Path
    database_url: str
    env: dict[str, str]
    nodes: list[Node]
    nginx: Nginx
    api: Service
    rs: tuple[str, str] = ("", "")
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=20.0))

    @property
    def url(self) -> str:
        """The public address: nginx."""
        return self.nginx.url

    @property
    def guards(self) -> dict[str, str]:
        """Base URL of each guard by name."""
        return {
            "node-a": self.nodes[0].base,
            "node-b": self.nodes[1].base,
            "sample-api": self.api.url,
        }

    def taap(self, *args: str) -> str:
        """The ``taap`` CLI as an operator runs it on another machine: same database URL."""
        return taap_ok(*args, env=self.env, cwd=self.folder)

    def register(
        self, names: list[str], keys: list[PrivateKey], apis: tuple[str, ...] = BOTH
    ) -> dict[str, Client]:
        wanted = {name: (keys[i % len(keys)], apis) for i, name in enumerate(names)}
        return register_clients(self.database_url, wanted, environ=self.env)

    def registry(self, work: Any) -> Any:
        """Run ``work(registry)`` on the cluster's registry (a loop and connection of its own)."""
        return with_registry(self.database_url, work, environ=self.env, migrate=False)

    def token(self, owner: str, client: Client, http: httpx.Client | None = None) -> Token:
        """A token issued through nginx."""
        headers = client.token_headers(TOKENS)
        asked = time.monotonic()
        response = (http or self.http).post(self.url + TOKENS, headers=headers)
        assert response.status_code == 200, response.text
        access = response.json()["access_token"]
        return Token.of(owner, client, access, asked, time.monotonic())

    def call(
        self, token: Token, guard: str, product: str, http: httpx.Client | None = None
    ) -> tuple[int, str]:
        """One guarded call with ``token`` and a fresh PoP: ``(status, error_code)``."""
        method, path, body, _ = PRODUCTS[product]
        headers = token.client.headers(method, path, token.access, body)
        url = self.guards[guard] + path
        return answer((http or self.http).request(method, url, headers=headers, content=body))

    def revoke(self, client: Client, token: str, base: str | None = None) -> httpx.Response:
        headers, body = revoke_request(client, token)
        return self.http.post((base or self.url) + REVOKE, headers=headers, content=body)

    def introspect(self, token: str, base: str | None = None) -> dict[str, Any]:
        body = urlencode({"token": token}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": basic(*self.rs),
        }
        response = self.http.post((base or self.url) + INTROSPECT, headers=headers, content=body)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def expired_token(self, owner: str, client: Client, apis: tuple[str, ...] = BOTH) -> Token:
        """A token signed with the registry's signing key through the library, issued two
        hours ago with the default lifetime (an hour): expired far beyond any leeway."""

        async def signing(registry: Registry) -> Any:
            return (await registry.signing_keys())[0]

        record = self.registry(signing)
        access = issue_access_token(
            key=record.key,
            kid=record.kid,
            issuer=self.url + "/oauth2/v1",
            client_id=client.client_id,
            apis=list(apis),
            cnf_jwk=client.key.public.jwk,
            now=time.time() - 7200,
        )
        return Token.of(owner, client, access)

    def feed(self) -> list[list[Any]]:
        """Every row of the revocation feed, read through nginx page after page."""
        rows: list[list[Any]] = []
        after = 0
        while True:
            response = self.http.get(self.url + FEED, params={"after": after, "limit": 5000})
            assert response.status_code == 200, response.text
            page = response.json()
            rows += page["entries"]
            if len(page["entries"]) < 5000:
                return rows
            after = page["seq"]

    def logs(self) -> str:
        paths = [log for node in self.nodes for log in node.logs] + [self.api.log]
        return "\n".join(p.read_text(errors="replace") for p in paths)


@contextmanager
def cluster_running(
    folder: Path, nginx_bin: str, database_url: str, redis_url: str
) -> Iterator[Cluster]:
    """Start the nodes, nginx and the separate guard; stop them all on exit."""
    nginx_port = free_port()
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    env = clean_env(
        TAAP_DATABASE_URL=database_url,
        TAAP_REDIS_URL=redis_url,
        TAAP_PEPPER=secrets.token_urlsafe(32),
        TAAP_PUBLIC_URL=nginx_url,
        TAAP_WITH_SAMPLE_APIS="true",
        TAAP_FORWARDED_ALLOW_IPS="127.0.0.1",
        TAAP_REVOCATION_MAX_AGE=str(MAX_AGE),
    )
    nodes = [Node(name, free_port(), [], env, folder) for name in ("node-a", "node-b")]
    nginx = start_nginx(nginx_bin, nodes, folder, port=nginx_port)
    api: Service | None = None
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        api_env = clean_env(TAAP_REVOCATION_MAX_AGE=str(MAX_AGE), TAAP_JWKS_MIN_REFRESH="1")
        api = start_sample_api(folder, nginx_url, redis_url=redis_url, env=api_env)
        cluster = Cluster(folder, database_url, env, nodes, nginx, api)
        created = json.loads(cluster.taap("resource-servers", "create", "--name", "rs", "--json"))
        cluster.rs = (created["id"], created["secret"])
        try:
            yield cluster
        finally:
            cluster.http.close()
    finally:
        if api is not None:
            api.stop()
        for node in nodes:
            node.kill()
        nginx.stop()
