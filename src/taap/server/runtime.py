"""Assembling a running token server from settings: registry, pepper, stores, audit logging.

:func:`build_app` opens the registry (first start: schema through the migrations, a signing
key, the seeded products (docs/protocol.md#the-client-registry)), picks the Redis stores when
``TAAP_REDIS_URL`` is set and the in-process ones otherwise, and returns the ASGI app.
:class:`DeferredApp` does the same lazily inside a uvicorn worker, where the app must exist before
the event loop can open connections.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from taap.asgi import Receive, Scope, Send
from taap.core.replay import ReplayStore
from taap.server.app import ASGIApp, TokenServerApp, create_app
from taap.server.audit import AUDIT_LOGGER, AuditHandler, AuditLog
from taap.server.lifecycle import Lifecycle
from taap.server.logs import JsonFormatter
from taap.server.metrics import ServerMetrics
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.sql import open_registry
from taap.server.settings import ServerSettings
from taap.server.usage.recorder import UsageRecorder
from taap.server.usage.store import SqlUsage
from taap.stores.ratelimit import RateLimiter

__all__ = [
    "DeferredApp",
    "FallbackFactory",
    "build_app",
    "configure_logging",
    "resolve_pepper",
]

FallbackFactory = Callable[[TokenServerApp], ASGIApp]
log = logging.getLogger("taap.server")


_TEXT_FORMAT = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def configure_logging(log_format: str = "json") -> None:
    """Audit lines as bare JSON on stderr, and the server's own log lines as JSON objects with
    the request id (``json``) or as plain lines (``text``); loggers the host application
    configured are left alone."""
    audit = logging.getLogger(AUDIT_LOGGER)
    if not audit.handlers:
        # Written and flushed per line; a failing stream raises to the token endpoint (503).
        audit.addHandler(AuditHandler(sys.stderr))
        audit.setLevel(logging.INFO)
        audit.propagate = False
    server = logging.getLogger("taap")
    if not server.handlers:
        # text: one line a record for a person at a terminal, as uvicorn's own lines are.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if log_format == "json" else _TEXT_FORMAT)
        server.addHandler(handler)
        server.setLevel(logging.INFO)
        server.propagate = False


def resolve_pepper(settings: ServerSettings) -> bytes:
    """``TAAP_PEPPER``, or the SQLite ``pepper`` file beside the database
    (docs/protocol.md#the-client-registry).

    Raises:
        ConfigurationError: no pepper with PostgreSQL, bad URL, short pepper.
        OSError: the pepper file cannot be created or read.
    """
    return load_pepper(parse_database_url(settings.database_url), settings.pepper_text())


async def build_app(
    settings: ServerSettings,
    *,
    fallback: FallbackFactory | None = None,
    migrate: bool = True,
    lifecycle: Lifecycle | None = None,
    metrics_dir: str | None = None,
) -> TokenServerApp:
    """Open the registry and stores named by ``settings``; the token-server app.

    Private signing keys are encrypted at rest with ``TAAP_KEY_ENCRYPTION_KEY`` when it is set
    (and must then be readable with it). ``metrics_dir``: prometheus-client's multi-process
    directory, when the process was started with ``PROMETHEUS_MULTIPROC_DIR`` set to it
    (``taap serve --workers N``); the metrics then live in its files.

    Raises:
        ConfigurationError: bad settings (database URL, pepper, driver).
        UnavailableError: the database cannot be reached.
    """
    pepper = resolve_pepper(settings)
    registry = await open_registry(
        settings.database_url,
        pepper=pepper,
        migrate=migrate,
        key_password=settings.key_password(),
    )
    replay: ReplayStore | None = None
    limiter: RateLimiter | None = None
    closers: list[Callable[[], Awaitable[None]]] = []
    if settings.redis_url:
        from taap.stores.redis import RedisRateLimiter, RedisReplayStore, connect

        client = connect(settings.redis_url)
        replay = RedisReplayStore(client, policy=settings.policy)
        limiter = RedisRateLimiter(client)
        closers.append(client.aclose)
    # Usage counts (docs/portal.md, "Usage"): batched in this process, added to the shared
    # table in the background; the last batch is written at shutdown.
    metrics = ServerMetrics(multiprocess_dir=metrics_dir)
    # The registry's own runner: a second engine on a SQLite file in this process would drop
    # the process's locks on it (see SqlRegistry.runner).
    usage_store = SqlUsage(registry.runner)
    usage = UsageRecorder(
        usage_store, on_lost=lambda reason, n: metrics.usage_lost.labels(reason).inc(n)
    )
    # At shutdown the registry's pool is released first (TokenServerApp.aclose): the last
    # batch opens one more connection, which the store's close releases again.
    closers[:0] = [usage.close, usage_store.close]

    async def on_close() -> None:
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", getattr(close, "__qualname__", close))

    app = create_app(
        settings,
        registry,
        pepper=pepper,
        replay_store=replay,
        limiter=limiter,
        audit=AuditLog(usage=usage.count),
        on_close=on_close,
        metrics=metrics,
        lifecycle=lifecycle,
    )
    if fallback is not None:
        app.fallback = fallback(app)
    return app


class DeferredApp:
    """An ASGI app that builds the real one on lifespan start-up (uvicorn workers)."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        fallback: FallbackFactory | None = None,
        migrate: bool = False,
        lifecycle: Lifecycle | None = None,
        install_signals: bool = False,
        metrics_dir: str | None = None,
    ) -> None:
        """``install_signals``: put the SIGTERM drain of ``lifecycle`` in front of the server's
        handler at start-up (``taap serve``; never for an app embedded elsewhere).
        ``metrics_dir``: as for :func:`build_app`."""
        self._settings = settings
        self._metrics_dir = metrics_dir
        self._fallback = fallback
        self._migrate = migrate
        self._lifecycle = lifecycle
        self._install_signals = install_signals
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> ASGIApp:
        async with self._lock:
            if self._app is None:
                settings = self._settings
                configure_logging(settings.log_format)
                lifecycle = self._lifecycle or Lifecycle(drain=settings.shutdown_drain)
                # Workers of a multi-process server do not migrate: the parent did it once.
                app: ASGIApp = await build_app(
                    settings,
                    fallback=self._fallback,
                    migrate=self._migrate,
                    lifecycle=lifecycle,
                    metrics_dir=self._metrics_dir,
                )
                if settings.otel:
                    from taap.server.tracing import TracingApp

                    app = TracingApp(app)
                self._app = app
                if self._install_signals:
                    lifecycle.install(asyncio.get_running_loop())
                # Everything loaded so far (modules, keys, engines) lives as long as the
                # process: keep it out of the collector's full scans, which otherwise show up
                # as tail-latency spikes on the token endpoint.
                gc.collect()
                gc.freeze()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is not None:
            await self._app(scope, receive, send)
            return
        if scope["type"] == "lifespan":
            message = await receive()
            try:
                app = await self._get()
            except Exception as exc:
                log.exception("token server start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            replay = [message]

            async def first_then_rest() -> MutableMapping[str, Any]:
                return replay.pop() if replay else await receive()

            await app(scope, first_then_rest, send)
            return
        await (await self._get())(scope, receive, send)
