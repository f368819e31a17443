"""The token server as one ASGI application (docs/server.md).

``create_app(settings, registry, pepper=...)`` returns a plain ASGI callable: the two token
endpoints go straight to :class:`~taap.server.tokens.TokenEndpoints` (no framework on the hot
path), revocation, introspection and the revocation feed to
:class:`~taap.server.revocation.RevocationEndpoints`; JWKS, discovery, health, readiness and
the OpenAPI document are small GET handlers.
Unknown paths answer 404 JSON, or go to ``fallback`` (the sample APIs) when one is mounted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from time import perf_counter

from taap.asgi import (
    ASGIApp,
    Message,
    Receive,
    RequestHead,
    Response,
    Scope,
    Send,
    json_bytes,
    render_error,
    send_response,
)
from taap.core.replay import MemoryReplayStore, ReplayStore
from taap.errors import (
    ConfigurationError,
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotFoundError,
    TaapError,
    UnavailableError,
)
from taap.server.audit import AuditLog, UsageHook
from taap.server.discovery import DISCOVERY_PATHS, discovery_document, jwks_document
from taap.server.lifecycle import Lifecycle
from taap.server.logs import REQUEST_ID, RequestIds
from taap.server.metrics import CONTENT_TYPE, ServerMetrics
from taap.server.openapi import openapi_document
from taap.server.registry.port import RegistryReader
from taap.server.revocation import RevocationEndpoints, RevocationSource, TokenRevoker
from taap.server.settings import ServerSettings, trusted_networks
from taap.server.tokens import TokenEndpoints, Version
from taap.stores.ratelimit import MemoryRateLimiter, RateLimiter

__all__ = ["ASGIApp", "TokenServerApp", "create_app"]

Handler = Callable[[], Awaitable[Response]]
log = logging.getLogger("taap.server")

V2_PATH = "/oauth2/v2/tokens"
V6_PATH = "/oauth2/v6/tokens"
_TOKEN_PATHS: dict[str, Version] = {V2_PATH: "v2", V6_PATH: "v6"}
# A 404 under /oauth2/ is most likely a mistyped token endpoint: name the real ones.
_TOKEN_HINT = f"not found; the token endpoints are POST {V2_PATH} and POST {V6_PATH}"
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
        revocation: RevocationEndpoints | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.tokens = tokens
        self.revocation = revocation
        self._endpoints = revocation.routes if revocation is not None else {}
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
    def usage(self) -> UsageHook | None:
        """The usage hook of the token endpoints' audit; a guard mounted beside them (``taap
        serve --with-sample-apis``) counts into the same one."""
        return self.tokens.audit.usage

    @property
    def replay_store(self) -> ReplayStore:
        return self.tokens.replay_store

    @property
    def limiter(self) -> RateLimiter:
        return self.tokens.limiter

    @property
    def revocations(self) -> RevocationSource | None:
        """The revocation state introspection judges with; assign a guard's watcher (with
        :attr:`RevocationEndpoints.fetch` as its fetch) to share one state with it."""
        return self.revocation.revocations if self.revocation is not None else None

    @revocations.setter
    def revocations(self, source: RevocationSource) -> None:
        if self.revocation is not None:
            self.revocation.revocations = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            version = _TOKEN_PATHS.get(path)
            endpoint = self._endpoints.get(path) if version is None else None
            if (
                version is None
                and endpoint is None
                and path not in self._routes
                and self.fallback is not None
            ):
                await self._to_fallback(scope, receive, send, self.fallback)
                return
            # Once per request, whichever handler answers: the head and the request id.
            head = RequestHead.of(scope["headers"])
            request_id = self._request_id(scope, head)
            if version is not None:
                await self.tokens(scope, receive, send, version, head, request_id)
            elif endpoint is not None:
                await endpoint(scope, receive, send, head, request_id)
            else:
                await self._get(scope, send, path, head, request_id)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    def _request_id(self, scope: Scope, head: RequestHead) -> str:
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        request_id = self._ids.pick(peer, head.request_ids)
        REQUEST_ID.set(request_id)  # for log lines written while this request runs
        return request_id

    async def _to_fallback(
        self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp
    ) -> None:
        # The mounted apps (portal, sample APIs) answer with an X-Request-Id too, so a line in
        # the log can be found from any response of this server.
        request_id = self._request_id(scope, RequestHead.of(scope["headers"]))
        stamp = (b"x-request-id", request_id.encode("ascii"))

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    message = {**message, "headers": [*headers, stamp]}
            await send(message)

        await fallback(scope, receive, stamped)

    async def _get(
        self, scope: Scope, send: Send, path: str, head: RequestHead, request_id: str
    ) -> None:
        handler = self._routes.get(path)
        started = perf_counter()
        content_type = _METRICS_TYPE if handler == self._metrics else None
        try:
            if handler is None:
                raise NotFoundError(
                    _TOKEN_HINT if (path.lower() + "/").startswith("/oauth2/") else None
                )
            if scope["method"] != "GET":
                raise MethodNotAllowedError()
            if head.size > self.settings.max_headers:
                raise HeadersTooLargeError()
            status, headers, body = await handler()
        except TaapError as exc:
            status, headers, body = render_error(exc, allow=_GET)
        except Exception:
            log.exception("unexpected error on GET %s", path)
            status, headers, body = render_error(None)
        headers = [*headers, (b"x-request-id", request_id.encode("ascii"))]
        if status == 200 and content_type is not None:
            await send_response(send, status, headers, body, content_type=content_type)
        else:
            await send_response(send, status, headers, body)
        label = "discovery" if path in DISCOVERY_PATHS else _ROUTE_LABELS.get(path, "other")
        self.metrics.observe(label, perf_counter() - started)

    @staticmethod
    def _static(body: bytes, headers: list[tuple[bytes, bytes]]) -> Handler:
        async def handler() -> Response:
            return 200, headers, body

        return handler

    async def _jwks(self) -> Response:
        keys = await self.registry.signing_keys()
        return 200, _JWKS_CACHE, json_bytes(jwks_document(keys))

    async def _health(self) -> Response:
        return 200, _NO_STORE, b'{"status":"ok"}'

    async def _metrics(self) -> Response:
        return 200, _NO_STORE, self.metrics.render()

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

    async def _ready(self) -> Response:
        if self.lifecycle.draining:
            # Shutting down: a load balancer takes this node out while it still serves.
            raise UnavailableError("not ready: shutting down")
        checks = await self.ready()
        if all(checks.values()):
            return 200, _NO_STORE, json_bytes({"status": "ready", "checks": checks})
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
    registry: TokenRevoker,
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
        settings,
        registry,
        endpoints,
        fallback=fallback,
        on_close=on_close,
        lifecycle=lifecycle,
        revocation=RevocationEndpoints(endpoints, registry),
    )
