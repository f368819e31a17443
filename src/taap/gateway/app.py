"""The gateway's ASGI application: its own few endpoints, and the guard in front of everything
else (docs/gateway.md).

- ``GET /healthz``: alive (no check of anything else);
- ``GET /readyz``: 200 when every upstream accepts a TCP connection, else 503 naming none;
- ``GET /metrics``: the guard's and the gateway's Prometheus metrics;
- ``GET /auth`` (with ``auth_request``): nginx's verdict (:mod:`taap.gateway.auth_request`);
- every other path: :class:`~taap.resource.GuardMiddleware` around the
  :class:`~taap.gateway.proxy.Forwarder`. A path under no forwarded product's base path is
  404 ``not_found`` before any check, as at every guard.

A call is judged exactly as the guard in front of a Python API judges it: the same middleware,
validator, error table and audit line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from taap.asgi import Receive, Scope, Send, json_bytes, render_error, send_response
from taap.errors import MethodNotAllowedError
from taap.gateway.auth_request import AUTH_PATH, AuthRequest
from taap.gateway.proxy import Forwarder, Upstream
from taap.gateway.settings import GatewaySettings
from taap.resource.keys import KeyProvider
from taap.resource.metrics import CONTENT_TYPE as METRICS_TYPE
from taap.resource.metrics import render as render_metrics
from taap.resource.middleware import GuardMiddleware
from taap.resource.revocations import RevocationFeed, RevocationWatcher
from taap.resource.settings import GuardSettings
from taap.resource.validator import Validator

__all__ = ["GatewayApp", "create_gateway_app"]

log = logging.getLogger("taap.gateway")
_OWN = ("/healthz", "/readyz", "/metrics")
# A readiness probe answers within its own timeout even when an upstream black-holes SYNs.
_READY_TIMEOUT = 1.0


class GatewayApp:
    """``taap gateway`` as an ASGI application."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        keys: KeyProvider | None = None,
        revocations: RevocationWatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``keys`` replaces the token server's JWKS (tests, benchmarks); revocations are then
        read only through ``revocations``.

        Raises:
            ConfigurationError: the token server URL is neither https nor loopback http, or
                several workers lack a shared replay store.
        """
        self.settings = settings
        guard = replace(GuardSettings.from_settings(settings), workers=settings.workers)
        forwarded = settings.product_paths(set(settings.upstreams))
        self.feed: RevocationFeed | None = None
        if keys is None:
            # The feed is built here so that shutdown can close its client.
            self.feed = RevocationFeed(settings.token_server)
            watcher = RevocationWatcher(self.feed, max_age=guard.revocation_max_age, clock=clock)
            forwarding = Validator.for_token_server(
                settings.token_server,
                products=forwarded,
                settings=guard,
                clock=clock,
                revocations=watcher,
            )
        else:
            forwarding = Validator(
                keys,
                products=forwarded,
                settings=guard,
                clock=clock,
                revocations=revocations,
            )
        self.validator = forwarding
        self.upstreams = {
            product: Upstream(
                product,
                origin,
                timeout=settings.upstream_timeout,
                connections=settings.upstream_connections,
            )
            for product, origin in settings.upstreams.items()
        }
        forwarder = Forwarder(
            self.upstreams,
            timeout=settings.upstream_timeout,
            max_body=settings.max_body,
            networks=settings.networks,
            strip_authorization=settings.strip_authorization,
        )
        self.guard = GuardMiddleware(forwarder, validator=forwarding)
        self.auth: AuthRequest | None = None
        if settings.auth_request:
            # Every product with a base path: nginx decides which locations it protects.
            judging = Validator(
                forwarding.keys,
                products=settings.product_paths(),
                replay=forwarding.replay,
                settings=guard,
                clock=clock,
                revocations=forwarding.revocations,
            )
            self.auth = AuthRequest(lambda inner: GuardMiddleware(inner, validator=judging))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if kind == "http" and (path in _OWN or (path == AUTH_PATH and self.auth is not None)):
            if scope["method"] not in ("GET", "HEAD"):
                error = MethodNotAllowedError()
                status, headers, body = render_error(error, allow=b"GET, HEAD")
                await send_response(send, status, headers, body)
                return
            await self._own(path, scope, receive, send)
            return
        await self.guard(scope, receive, send)

    async def _own(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path == AUTH_PATH and self.auth is not None:
            await self.auth(scope, receive, send)
        elif path == "/healthz":
            await send_response(send, 200, [(b"cache-control", b"no-store")], b'{"status":"ok"}')
        elif path == "/readyz":
            down = await self.unreachable()
            status = 503 if down else 200
            body = {"status": "unready" if down else "ready", "unreachable": down}
            await send_response(send, status, [(b"cache-control", b"no-store")], json_bytes(body))
        else:
            content_type = (b"content-type", METRICS_TYPE.encode("latin-1"))
            await send_response(send, 200, [], render_metrics(), content_type=content_type)

    async def unreachable(self) -> list[str]:
        """The products whose upstream does not accept a connection now."""
        products = list(self.upstreams)
        answers = await asyncio.gather(
            *(self.upstreams[p].reachable(_READY_TIMEOUT) for p in products)
        )
        return [p for p, ok in zip(products, answers, strict=True) if not ok]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # uvicorn has drained the in-flight calls (or given up after its timeout).
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the upstream pools and the token server's feed."""
        for upstream in self.upstreams.values():
            upstream.close()
        if self.feed is not None:
            await self.feed.aclose()


def create_gateway_app(settings: GatewaySettings) -> GatewayApp:
    """The gateway for ``settings`` (an app factory for uvicorn's workers)."""
    return GatewayApp(settings)
