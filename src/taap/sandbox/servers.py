"""A throw-away TAAP installation: token server and sample APIs on free loopback ports.

Both run as uvicorn servers on real sockets (taap's listener, with its default limits on slow
and surplus connections), in one background thread with its own event loop, over a fresh
SQLite registry in a temporary folder. The sample APIs fetch the token server's
discovery document and JWKS over HTTP like any resource server would, and share its replay
store (one jti namespace, SECURITY.md R5).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import uvicorn

from taap.core.keys import PublicKey
from taap.errors import TaapError, UnavailableError
from taap.listener import ListenerConfig, ListenerLimits
from taap.resource.revocations import RevocationWatcher
from taap.resource.sample import create_sample_app
from taap.resource.settings import GuardSettings
from taap.server.app import create_app
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import ApiProduct, ClientRecord, Registry
from taap.server.registry.sql import open_registry
from taap.server.revocation.source import registry_revocations
from taap.server.settings import ServerSettings

__all__ = ["Sandbox", "running_sandbox"]

T = TypeVar("T")
START_TIMEOUT = 15.0


def _bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class Sandbox:
    """Handles to a running sandbox; registry calls run on the servers' event loop."""

    token_url: str
    api_url: str
    database_url: str
    folder: Path
    loop: asyncio.AbstractEventLoop
    registry: Registry
    _servers: list[uvicorn.Server] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the sandbox loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def create_client(
        self,
        *,
        name: str,
        keys: Sequence[PublicKey],
        apis: Sequence[str],
        client_id: str | None = None,
    ) -> tuple[ClientRecord, str]:
        """Register a client; its record and plaintext secret."""
        return self.run(
            self.registry.create_client(name=name, keys=keys, apis=apis, client_id=client_id)
        )


def _url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class _Launch:
    """What the servers' thread reports back; ``ready`` is set once it has (or has failed)."""

    ready: threading.Event = field(default_factory=threading.Event)
    registry: Registry | None = None
    servers: list[uvicorn.Server] = field(default_factory=list)
    error: BaseException | None = None

    def wait(self) -> tuple[Registry, list[uvicorn.Server]]:
        """The registry and both servers once they serve.

        Raises:
            TaapError: the settings or a product were refused (that error itself).
            UnavailableError: one failed, or they did not start within ``START_TIMEOUT``.
        """
        ready = self.ready.wait(START_TIMEOUT)
        if isinstance(self.error, TaapError):
            raise self.error
        if not ready or self.error is not None:
            raise UnavailableError("the sandbox servers did not start", log_detail=repr(self.error))
        if self.registry is None or not all(s.started for s in self.servers):
            raise UnavailableError("the sandbox servers did not start")
        return self.registry, self.servers


@dataclass(frozen=True)
class _Options:
    """What a caller may change: the ``TAAP_*`` settings both servers read (defaults when
    empty), the access-token lifetime, and products to add to the seeded five."""

    environ: Mapping[str, str] = field(default_factory=dict)
    token_ttl: int | None = None
    products: Sequence[ApiProduct] = ()


async def _open_apps(
    database_url: str, token_sock: socket.socket, options: _Options
) -> tuple[Registry, Any, Any, ListenerLimits]:
    """The registry, the token server app, the sample APIs app that trusts it, and the limits
    both listeners keep."""
    token_url = _url(token_sock)
    # The sandbox is self-contained: the given settings or the defaults, never the caller's
    # TAAP_* variables (its guard below reads the same settings, so both sides judge alike).
    settings = ServerSettings.load(
        environ=options.environ,
        database_url=database_url,
        public_url=token_url,
        port=token_sock.getsockname()[1],
        token_ttl=options.token_ttl,
    )
    pepper = load_pepper(parse_database_url(database_url))
    registry = await open_registry(database_url, pepper=pepper)
    try:
        for product in options.products:
            await registry.create_product(product)
    except BaseException:
        await registry.close()
        raise
    token_app = create_app(settings, registry, pepper=pepper)
    guard = GuardSettings.from_settings(settings)
    # One process: the guard reads the revocation log from the registry, not over HTTP.
    revocations = RevocationWatcher(
        registry_revocations(registry), max_age=guard.revocation_max_age
    )
    api_app = create_sample_app(
        token_url, replay_store=token_app.replay_store, settings=guard, revocations=revocations
    )
    return registry, token_app, api_app, ListenerLimits.from_settings(settings)


async def _serve(
    launch: _Launch,
    database_url: str,
    options: _Options,
    token_sock: socket.socket,
    api_sock: socket.socket,
) -> None:
    try:
        opened = await _open_apps(database_url, token_sock, options)
        registry, token_app, api_app, limits = opened
        lifespans: tuple[tuple[Any, Literal["on", "off"]], ...] = (
            (token_app, "on"),
            (api_app, "off"),
        )
        servers = [
            uvicorn.Server(
                ListenerConfig(
                    app, limits=limits, log_level="warning", access_log=False, lifespan=life
                )
            )
            for app, life in lifespans
        ]
        launch.registry, launch.servers = registry, servers
        tasks = [
            asyncio.ensure_future(servers[0].serve(sockets=[token_sock])),
            asyncio.ensure_future(servers[1].serve(sockets=[api_sock])),
        ]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        launch.ready.set()
        await asyncio.gather(*tasks)
    except BaseException as exc:
        launch.error = exc
        launch.ready.set()
        raise


def _run_loop(loop: asyncio.AbstractEventLoop, serve: Callable[[], Awaitable[None]]) -> None:
    asyncio.set_event_loop(loop)
    try:
        # A failure is reported through the launch's error; the thread just ends.
        with contextlib.suppress(BaseException):
            loop.run_until_complete(serve())
    finally:
        loop.close()


@contextmanager
def running_sandbox(
    *,
    token_ttl: int | None = None,
    folder: Path | None = None,
    environ: Mapping[str, str] | None = None,
    products: Sequence[ApiProduct] = (),
) -> Iterator[Sandbox]:
    """Start the token server and the sample APIs; stop both and delete the folder on exit.

    ``environ`` holds ``TAAP_*`` settings for both servers (docs/server.md#settings; the
    database, the public URL and the port are always the sandbox's own);
    ``products`` are registered beside the five seeded ones.

    Raises:
        ConfigurationError: a setting in ``environ`` is invalid.
        TaapError: a product was refused by the registry.
        UnavailableError: the servers did not start within 15 s.
    """
    with tempfile.TemporaryDirectory(prefix="taap-sandbox-") as temp:
        where = folder or Path(temp)
        database_url = f"sqlite:///{where / 'taap.db'}"
        token_sock, api_sock = _bind_loopback(), _bind_loopback()
        loop = asyncio.new_event_loop()
        launch = _Launch()
        options = _Options(dict(environ or {}), token_ttl, tuple(products))
        serve = partial(_serve, launch, database_url, options, token_sock, api_sock)
        thread = threading.Thread(
            target=_run_loop, args=(loop, serve), name="taap-sandbox", daemon=True
        )
        thread.start()
        try:
            registry, servers = launch.wait()
            yield Sandbox(
                _url(token_sock), _url(api_sock), database_url, where, loop, registry, servers
            )
        finally:
            for server in launch.servers:
                server.should_exit = True
            thread.join(10)
            token_sock.close()
            api_sock.close()
