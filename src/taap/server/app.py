"""The token server as one ASGI application (TAAP.md A4).

``create_app(settings, registry, pepper=...)`` returns a plain ASGI callable: the two token
endpoints go straight to :class:`~taap.server.issuance.TokenEndpoints` (no framework on the hot
path); JWKS, discovery, health, readiness and the OpenAPI document are small GET handlers.
Unknown paths answer 404 JSON, or go to ``fallback`` (the sample APIs) when one is mounted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from time import perf_counter

from taap.core.replay import MemoryReplayStore, ReplayStore
from taap.errors import (
    ConfigurationError,
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotFoundError,
    TaapError,
    UnavailableError,
)
from taap.server.audit import AuditLog
from taap.server.discovery import DISCOVERY_PATHS, discovery_document, jwks_document
from taap.server.issuance import TokenEndpoints
from taap.server.lifecycle import Lifecycle
from taap.server.logs import REQUEST_ID, RequestIds
from taap.server.metrics import CONTENT_TYPE, ServerMetrics
from taap.server.openapi import openapi_document
from taap.server.registry.port import RegistryReader
from taap.server.settings import ServerSettings, trusted_networks
from taap.server.wire import Receive, Scope, Send, error_response, json_bytes, send_response
from taap.stores.ratelimit import MemoryRateLimiter, RateLimiter

__all__ = ["ASGIApp", "TokenServerApp", "create_app"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[], Awaitable[tuple[int, bytes, list[tuple[bytes, bytes]]]]]
log = logging.getLogger("taap.server")

V2_PATH = "/oauth2/v2/tokens"
V6_PATH = "/oauth2/v6/tokens"
_GET = b"GET"
_JWKS_CACHE = [(b"cache-control", b"public, max-age=60")]
_META_CACHE = [(b"cache-control", b"public, max-age=300")]
_NO_STORE = [(b"cache-control", b"no-store")]
_METRICS_TYPE = (b"content-type", CONTENT_TYPE.encode("ascii"))
# Duration-histogram label of each GET route (bounded: unknown paths are "other").
_ROUTE_LABELS = {
    "/oauth2/v1/jwks": "jwks",
    "/healthz": "health",
    "/readyz": "ready",
    "/openapi.json": "openapi",
    "/metrics": "metrics",
}


class TokenServerApp:
    """The ASGI callable returned by :func:`create_app`."""

    def __init__(
        self,
        settings: ServerSettings,
        registry: RegistryReader,
        tokens: TokenEndpoints,
        *,
        fallback: ASGIApp | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.tokens = tokens
        self.fallback = fallback
        self.lifecycle = Lifecycle() if lifecycle is None else lifecycle
        self.metrics: ServerMetrics = tokens.metrics
        self._on_close = on_close
        self._ids = RequestIds(trusted_networks(settings.forwarded_allow_ips))
        discovery = json_bytes(
            discovery_document(base_url=settings.base_url, issuer=settings.issuer_url)
        )
        openapi = json_bytes(openapi_document(base_url=settings.base_url))
        routes: dict[str, Handler] = {
            "/oauth2/v1/jwks": self._jwks,
            "/healthz": self._health,
            "/readyz": self._ready,
            "/openapi.json": self._static(openapi, _META_CACHE),
        }
        if settings.metrics:
            routes["/metrics"] = self._metrics
        for path in DISCOVERY_PATHS:
            routes[path] = self._static(discovery, _META_CACHE)
        self._routes = routes

    @property
    def replay_store(self) -> ReplayStore:
        return self.tokens.replay_store

    @property
    def limiter(self) -> RateLimiter:
        return self.tokens.limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == V2_PATH:
                await self.tokens(scope, receive, send, "v2")
            elif path == V6_PATH:
                await self.tokens(scope, receive, send, "v6")
            else:
                await self._get(scope, receive, send, path)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _get(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        handler = self._routes.get(path)
        if handler is None and self.fallback is not None:
            await self.fallback(scope, receive, send)
            return
        started = perf_counter()
        client = scope.get("client")
        given = [value for name, value in scope["headers"] if name == b"x-request-id"]
        request_id = self._ids.pick(client[0] if client else "unknown", given)
        REQUEST_ID.set(request_id)
        content_type = _METRICS_TYPE if handler == self._metrics else None
        try:
            if handler is None:
                raise NotFoundError()
            if scope["method"] != "GET":
                raise MethodNotAllowedError()
            size = sum(len(n) + len(v) + 4 for n, v in scope["headers"])
            if size > self.settings.max_headers:
                raise HeadersTooLargeError()
            status, body, headers = await handler()
        except TaapError as exc:
            status, body, headers = error_response(exc, allow=_GET)
        except Exception:
            log.exception("unexpected error on GET %s", path)
            status, body, headers = error_response(None)
        headers = [*headers, (b"x-request-id", request_id.encode("ascii"))]
        if status == 200 and content_type is not None:
            await send_response(send, status, body, headers, content_type=content_type)
        else:
            await send_response(send, status, body, headers)
        label = "discovery" if path in DISCOVERY_PATHS else _ROUTE_LABELS.get(path, "other")
        self.metrics.observe(label, perf_counter() - started)

    @staticmethod
    def _static(body: bytes, headers: list[tuple[bytes, bytes]]) -> Handler:
        async def handler() -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
            return 200, body, headers

        return handler

    async def _jwks(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        keys = await self.registry.signing_keys()
        return 200, json_bytes(jwks_document(keys)), _JWKS_CACHE

    async def _health(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        return 200, b'{"status":"ok"}', _NO_STORE

    async def _metrics(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        return 200, self.metrics.render(), _NO_STORE

    async def ready(self) -> dict[str, bool]:
        """Which dependencies answer: database, replay store, rate limiter, signing key."""
        checks: dict[str, bool] = {}
        for name, probe in (
            ("database", self.registry.ping),
            ("replay_store", self.tokens.replay_store.ping),
            ("rate_limiter", self.tokens.limiter.ping),
        ):
            try:
                checks[name] = bool(await probe())
            except Exception:  # readiness reports; it never fails the probe itself
                checks[name] = False
        try:
            checks["signing_key"] = bool(await self.tokens.signing_key())
        except Exception:
            checks["signing_key"] = False
        return checks

    async def _ready(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self.lifecycle.draining:
            # Shutting down: a load balancer takes this node out while it still serves.
            raise UnavailableError("not ready: shutting down")
        checks = await self.ready()
        if all(checks.values()):
            return 200, json_bytes({"status": "ready", "checks": checks}), _NO_STORE
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        raise UnavailableError(f"not ready: {failing}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.tokens.signing_key()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the registry, the signing threads and any shared stores."""
        try:
            self.tokens.close()
            await self.registry.close()
        finally:
            if self._on_close is not None:
                await self._on_close()


def create_app(
    settings: ServerSettings,
    registry: RegistryReader,
    *,
    pepper: bytes,
    replay_store: ReplayStore | None = None,
    limiter: RateLimiter | None = None,
    clock: Callable[[], float] = time.time,
    audit: AuditLog | None = None,
    fallback: ASGIApp | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
    metrics: ServerMetrics | None = None,
    lifecycle: Lifecycle | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> TokenServerApp:
    """The token-server ASGI app over ``registry``.

    Without ``replay_store``/``limiter`` the in-process ones are used (one process only; the
    caller builds Redis ones for several, see :func:`taap.server.runtime.build_app`).

    Raises:
        ConfigurationError: ``pepper`` is empty.
    """
    if not pepper:
        raise ConfigurationError("the token server needs the registry's pepper")
    endpoints = TokenEndpoints(
        settings,
        registry,
        pepper=pepper,
        # "is None", not "or": an empty store has len() 0 and would read as false
        replay_store=(
            MemoryReplayStore(settings.replay_capacity) if replay_store is None else replay_store
        ),
        limiter=MemoryRateLimiter() if limiter is None else limiter,
        clock=clock,
        audit=AuditLog() if audit is None else audit,
        metrics=metrics,
        monotonic=monotonic,
    )
    return TokenServerApp(
        settings, registry, endpoints, fallback=fallback, on_close=on_close, lifecycle=lifecycle
    )
