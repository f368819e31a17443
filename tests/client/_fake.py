"""A small TAAP token server + API built on the core only (until the real server is wired in).

It follows A4's shape: Basic auth, a v6 body check, the PoP verified with
``taap.core.pop.verify_pop_token`` over ``request_parts``, one-hop jti, tokens from
``taap.core.tokens``. The API verifies the Bearer token and the PoP against ``cnf.jwk``.
Scripted answers (429, 503 ...) can be queued to exercise the client's retry rules, and every
request is counted. Revocation (RFC 7009: Basic + PoP over the form) and introspection (RFC 7662:
a resource server's Basic) follow the token server's contract; a revoked token is refused by the
API with 401 ``token_revoked``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taap.core import (
    PrivateKey,
    PublicKey,
    issue_access_token,
    issue_id_token,
    request_parts,
    verify_access_token,
    verify_pop_token,
)
from taap.errors import (
    BodyInvalidError,
    ClientAuthError,
    PopMissingError,
    PopReplayedError,
    TaapError,
    TokenInvalidError,
    TokenRevokedError,
)

ISSUER = "http://fake.test/oauth2/v1"
KID = "fake-1"


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeTaap:
    client_id: str
    secret: str
    client_key: PublicKey
    server_key: PrivateKey
    clock: Callable[[], float] = time.time
    token_ttl: int = 3600
    expires_in_number: bool = False
    token_delay: float = 0.0
    token_requests: int = 0
    api_requests: int = 0
    token_bodies: list[bytes] = field(default_factory=list)
    api_seen: list[dict[str, Any]] = field(default_factory=list)
    api_pops: list[str] = field(default_factory=list)
    token_script: deque[Scripted] = field(default_factory=deque)
    api_script: deque[Scripted] = field(default_factory=deque)
    revoked: set[str] = field(default_factory=set)
    revocations: list[dict[str, str]] = field(default_factory=list)
    resource_servers: dict[str, str] = field(default_factory=dict)
    _jtis: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth2/v2/tokens", self._token, methods=["POST"]),
                Route("/oauth2/v6/tokens", self._token, methods=["POST"]),
                Route("/oauth2/v1/revoke", self._revoke, methods=["POST"]),
                Route("/oauth2/v1/introspect", self._introspect, methods=["POST"]),
                Route("/api/{rest:path}", self._api, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _error(exc: TaapError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.wire_headers())

    def _one_hop(self, client_id: str, jti: str | None) -> None:
        with self._lock:
            key = f"{client_id}:{jti}"
            if jti is None or key in self._jtis:
                raise PopReplayedError()
            self._jtis.add(key)

    @staticmethod
    def _parts(request: Request, body: bytes) -> Any:
        scope = request.scope
        return request_parts(
            scope["method"], scope["raw_path"], scope["query_string"], scope["headers"], body
        )

    # -- endpoints -----------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        with self._lock:
            self.token_requests += 1
            scripted = self.token_script.popleft() if self.token_script else None
        if self.token_delay:
            await asyncio.sleep(self.token_delay)  # widen the race window for single flight
        if scripted is not None:
            return JSONResponse(scripted.body, scripted.status, headers=scripted.headers)
        body = await request.body()
        self.token_bodies.append(body)
        try:
            return self._issue(request, body)
        except TaapError as exc:
            return self._error(exc)

    def _issue(self, request: Request, body: bytes) -> Response:
        parts = self._parts(request, body)
        basic = parts.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        if basic != expected:
            raise ClientAuthError()
        extra: dict[str, str] = {}
        if request.url.path.endswith("/v6/tokens"):
            data = json.loads(body or b"null")
            if not isinstance(data, dict) or data.get("client_id") != self.client_id:
                raise BodyInvalidError()
            if data.get("client_secret") != self.secret:
                raise ClientAuthError()
            if data.get("scope") != "response_mode" or data.get("grant-type") != (
                "client_credentials"
            ):
                raise BodyInvalidError()
            extra = {k: data[k] for k in ("storeId", "dealerCode") if k in data}
        elif body:
            raise BodyInvalidError()
        pop = parts.headers.get("x-authorization")
        if not pop:
            raise PopMissingError()
        now = self.clock()
        verified = verify_pop_token(pop, keys=[self.client_key], request=parts, now=now)
        self._one_hop(self.client_id, verified.jti)
        access = issue_access_token(
            key=self.server_key,
            kid=KID,
            issuer=ISSUER,
            client_id=self.client_id,
            apis=["connectivity"],
            cnf_jwk=verified.key.jwk,
            now=now,
            ttl=self.token_ttl,
            extra=extra,
        )
        id_token = issue_id_token(
            key=self.server_key, kid=KID, issuer=ISSUER, client_id=self.client_id, now=now
        )
        lifetime = self.token_ttl - 1
        return JSONResponse(
            {
                "id_token": id_token,
                "access_token": access,
                "expires_in": lifetime if self.expires_in_number else str(lifetime),
                "scope": "",
                "status": "approved",
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def _api(self, request: Request) -> Response:
        with self._lock:
            self.api_requests += 1
            self.api_pops.append(request.headers.get("x-authorization", ""))
            scripted = self.api_script.popleft() if self.api_script else None
        if scripted is not None:
            return JSONResponse(scripted.body, scripted.status, headers=scripted.headers)
        body = await request.body()
        try:
            parts = self._parts(request, body)
            bearer = parts.headers.get("authorization", "")
            if not bearer.startswith("Bearer "):
                raise TokenInvalidError()
            token_text = bearer.removeprefix("Bearer ")
            if token_text in self.revoked:
                raise TokenRevokedError()
            now = self.clock()
            access = verify_access_token(
                token_text, keys={KID: self.server_key.public}, issuer=ISSUER, now=now
            )
            pop = parts.headers.get("x-authorization")
            if not pop:
                raise PopMissingError()
            verified = verify_pop_token(pop, keys=[access.cnf_key], request=parts, now=now)
            self._one_hop(access.client_id, verified.jti)
        except TaapError as exc:
            return self._error(exc)
        seen = {
            "client_id": access.client_id,
            "uri": parts.uri,
            "method": parts.method,
            "body": body.decode(),
            "ehts": list(verified.names),
        }
        self.api_seen.append(seen)
        return JSONResponse(seen)

    # -- revocation and introspection ------------------------------------------------

    async def _revoke(self, request: Request) -> Response:
        body = await request.body()
        parts = self._parts(request, body)
        basic = parts.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        try:
            if basic != expected:
                raise ClientAuthError()
            pop = parts.headers.get("x-authorization")
            if not pop:
                raise PopMissingError()
            verified = verify_pop_token(
                pop, keys=[self.client_key], request=parts, now=self.clock()
            )
            self._one_hop(self.client_id, verified.jti)
        except TaapError as exc:
            return self._error(exc)
        fields = dict(parse_qsl(body.decode()))
        self.revocations.append({**fields, "signed": ",".join(verified.names)})
        self.revoked.add(fields["token"])
        return Response(status_code=200)

    async def _introspect(self, request: Request) -> Response:
        body = await request.body()
        basic = request.headers.get("authorization", "")
        known = {
            "Basic " + base64.b64encode(f"{rs}:{secret}".encode()).decode()
            for rs, secret in self.resource_servers.items()
        }
        if basic not in known:
            return self._error(ClientAuthError())
        token = dict(parse_qsl(body.decode())).get("token", "")
        try:
            if token in self.revoked:
                raise TokenRevokedError()
            access = verify_access_token(
                token, keys={KID: self.server_key.public}, issuer=ISSUER, now=self.clock()
            )
        except TaapError:
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, "client_id": access.client_id, "jti": access.jti})
