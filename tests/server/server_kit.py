"""Helpers for the token-server tests: a fixed clock, an app over MemoryRegistry, signed calls."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from kit.wire import basic
from taap.core import PrivateKey, PublicKey, build_pop_token, public_key_from_jwk
from taap.core.jws import parse_compact
from taap.core.replay import MemoryReplayStore
from taap.core.tokens import verify_access_token
from taap.server.app import TokenServerApp, create_app
from taap.server.audit import AuditLog
from taap.server.registry.memory import MemoryRegistry
from taap.server.settings import ServerSettings
from taap.stores.ratelimit import Bucket, MemoryRateLimiter

NOW = 1_800_000_000.0
PEPPER = b"test-pepper-0123456789"
BASE = "http://127.0.0.1:8000"
PEER = "203.0.113.7"
ERROR_KEYS = ["error", "error_description", "error_code"]
TOKEN_KEYS = ["id_token", "access_token", "expires_in", "scope", "status"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sign(
    key: PrivateKey,
    *,
    authorization: str,
    uri: str,
    body: str = "",
    now: float = NOW,
    names: Sequence[str] | None = None,
    overrides: dict[str, str] | None = None,
    jti: str | None = None,
    ttl: int = 60,
) -> str:
    """The step-1 PoP in A2's default order (Content-Type, Authorization, uri, method, body)."""
    values = {
        "Content-Type": "application/json",
        "Authorization": authorization,
        "uri": uri,
        "http-method": "POST",
        "body": body,
    }
    values.update(overrides or {})
    chosen = names or [n for n in values if n != "body" or body]
    return build_pop_token([(n, values[n]) for n in chosen], key, now=now, jti=jti, ttl=ttl)


def v6_body(client_id: str, secret: str, **extra: Any) -> str:
    fields = {
        "client_id": client_id,
        "client_secret": secret,
        "scope": "response_mode",
        "grant-type": "client_credentials",
    }
    fields.update(extra)
    return json.dumps(fields)


@dataclass
class Harness:
    """An app over a MemoryRegistry with in-process stores, a fixed clock and a caller."""

    app: TokenServerApp
    registry: MemoryRegistry
    replay: Any
    limiter: Any
    clock: Clock
    key: PrivateKey
    client_id: str
    secret: str
    settings: ServerSettings
    audit_lines: list[dict[str, Any]] = field(default_factory=list)
    peer: str = PEER

    def http(self, peer: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(peer or self.peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    def auth(self, client_id: str | None = None, secret: str | None = None) -> str:
        return basic(client_id or self.client_id, secret or self.secret)

    def request(
        self,
        version: str = "v2",
        *,
        body: str | None = None,
        key: PrivateKey | None = None,
        authorization: str | None = None,
        names: Sequence[str] | None = None,
        pop_now: float | None = None,
        jti: str | None = None,
        sign_uri: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[str, dict[str, str], bytes]:
        """A valid token request (path, headers, body) unless told otherwise."""
        if body is None:
            body = v6_body(self.client_id, self.secret) if version == "v6" else ""
        auth = authorization or self.auth()
        uri = f"/oauth2/{version}/tokens"
        pop = sign(
            key or self.key,
            authorization=auth,
            uri=sign_uri or uri,
            body=body,
            now=self.clock.now if pop_now is None else pop_now,
            names=names,
            jti=jti,
            overrides=extra,
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": auth,
            "X-Authorization": pop,
        }
        return uri, headers, body.encode()

    async def post(self, version: str = "v2", **kwargs: Any) -> httpx.Response:
        path, headers, body = self.request(version, **kwargs)
        async with self.http() as client:
            return await client.post(path, headers=headers, content=body)

    def replay_size(self) -> int:
        return len(self.replay) if isinstance(self.replay, MemoryReplayStore) else -1

    def levels(self, peer: str | None = None, client_id: str | None = None) -> tuple[float, float]:
        """(address bucket, client bucket) levels at the current time."""
        s = self.settings
        addr = Bucket(f"addr:{peer or self.peer}", s.address_rate)
        cli = Bucket(f"client:{client_id or self.client_id}", s.client_rate)
        assert isinstance(self.limiter, MemoryRateLimiter)
        return (
            self.limiter.level(addr, now=self.clock.now),
            self.limiter.level(cli, now=self.clock.now),
        )


class ListHandler(logging.Handler):
    def __init__(self, sink: list[dict[str, Any]]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(json.loads(record.getMessage()))


async def make_harness(
    key: PrivateKey,
    *,
    apis: Sequence[str] = ("connectivity", "sms-notification", "call-verification"),
    signing_key: PrivateKey | None = None,
    replay: Any = None,
    limiter: Any = None,
    registry: Any = None,
    audit: AuditLog | None = None,
    **settings: Any,
) -> Harness:
    clock = Clock()
    memory = MemoryRegistry(PEPPER, clock=clock, signing_key=signing_key)
    record, secret = await memory.create_client(name="test client", keys=[key.public], apis=apis)
    sink: list[dict[str, Any]] = []
    logger = logging.getLogger(f"taap.audit.test.{id(sink)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(ListHandler(sink))
    config = ServerSettings.load(**({"public_url": BASE} | settings))
    replay = replay if replay is not None else MemoryReplayStore()
    limiter = limiter if limiter is not None else MemoryRateLimiter()
    app = create_app(
        config,
        registry if registry is not None else memory,
        pepper=PEPPER,
        replay_store=replay,
        limiter=limiter,
        clock=clock,
        audit=AuditLog(logger) if audit is None else audit,
        monotonic=clock,  # key refresh and caches follow the test's clock
    )
    return Harness(
        app=app,
        registry=memory,
        replay=replay,
        limiter=limiter,
        clock=clock,
        key=key,
        client_id=record.client_id,
        secret=secret,
        settings=config,
        audit_lines=sink,
    )


def jwks_keys(jwks: dict[str, Any]) -> dict[str, PublicKey]:
    return {k["kid"]: public_key_from_jwk(k) for k in jwks["keys"]}


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parsed = parse_compact(token, max_bytes=16384, max_header_bytes=1024)
    return parsed.header, parsed.payload


def verify_tokens(
    payload: dict[str, Any], jwks: dict[str, Any], issuer: str, now: float
) -> dict[str, Any]:
    """Check both tokens against the JWKS; returns the access token's claims."""
    keys = jwks_keys(jwks)
    access = verify_access_token(payload["access_token"], keys=keys, issuer=issuer, now=now)
    id_header, _id_claims = decode(payload["id_token"])
    key = keys[id_header["kid"]]
    parsed = parse_compact(payload["id_token"], max_bytes=16384, max_header_bytes=1024)
    assert key.verify_rs256(parsed.signature, parsed.signing_input)
    return dict(access.claims)
