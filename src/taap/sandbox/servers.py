"""A throw-away TAAP installation: token server and sample APIs on free loopback ports.

Both run as uvicorn servers on real sockets, in one background thread with its own event loop,
over a fresh SQLite registry in a temporary folder. The sample APIs fetch the token server's
discovery document and JWKS over HTTP like any resource server would, and share its replay
store (one jti namespace, SECURITY.md R5).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import uvicorn

from taap.core.keys import PublicKey
from taap.errors import UnavailableError
from taap.resource.revocations import RevocationWatcher
from taap.resource.sample import create_sample_app
from taap.resource.settings import GuardSettings
from taap.server.app import create_app
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import ClientRecord, Registry
from taap.server.registry.sql import open_registry
from taap.server.runtime import registry_revocations
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
            UnavailableError: one failed, or they did not start within ``START_TIMEOUT``.
        """
        if not self.ready.wait(START_TIMEOUT) or self.error is not None:
            raise UnavailableError("the sandbox servers did not start", log_detail=repr(self.error))
        if self.registry is None or not all(s.started for s in self.servers):
            raise UnavailableError("the sandbox servers did not start")
        return self.registry, self.servers


async def _open_apps(
    database_url: str, token_sock: socket.socket, token_ttl: int | None
) -> tuple[Registry, Any, Any]:
    """The registry, the token server app and the sample APIs app that trusts it."""
    token_url = _url(token_sock)
    pepper = load_pepper(parse_database_url(database_url))
    registry = await open_registry(database_url, pepper=pepper)
    # The sandbox is self-contained: defaults, not the caller's TAAP_* variables (its guard
    # below uses the defaults too, so both sides judge alike).
    settings = ServerSettings.load(
        environ={},
        database_url=database_url,
        public_url=token_url,
        port=token_sock.getsockname()[1],
        token_ttl=token_ttl,
    )
    token_app = create_app(settings, registry, pepper=pepper)
    guard = GuardSettings()
    # One process: the guard reads the revocation log from the registry, not over HTTP.
    revocations = RevocationWatcher(
        registry_revocations(registry), max_age=guard.revocation_max_age
    )
    api_app = create_sample_app(
        token_url, replay_store=token_app.replay_store, settings=guard, revocations=revocations
    )
    return registry, token_app, api_app


async def _serve(
    launch: _Launch,
    database_url: str,
    token_ttl: int | None,
    token_sock: socket.socket,
    api_sock: socket.socket,
) -> None:
    try:
        registry, token_app, api_app = await _open_apps(database_url, token_sock, token_ttl)
        lifespans: tuple[tuple[Any, Literal["on", "off"]], ...] = (
            (token_app, "on"),
            (api_app, "off"),
        )
        servers = [
            uvicorn.Server(
                uvicorn.Config(app, log_level="warning", access_log=False, lifespan=life)
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
    *, token_ttl: int | None = None, folder: Path | None = None
) -> Iterator[Sandbox]:
    """Start the token server and the sample APIs; stop both and delete the folder on exit.

    Raises:
        UnavailableError: the servers did not start within 15 s.
    """
    with tempfile.TemporaryDirectory(prefix="taap-sandbox-") as temp:
        where = folder or Path(temp)
        database_url = f"sqlite:///{where / 'taap.db'}"
        token_sock, api_sock = _bind_loopback(), _bind_loopback()
        loop = asyncio.new_event_loop()
        launch = _Launch()
        serve = partial(_serve, launch, database_url, token_ttl, token_sock, api_sock)
        thread = threading.Thread(
            target=_run_loop, args=(loop, serve), name="taap-sandbox", daemon=True
        )
        thread.start()
        registry, servers = launch.wait()
        try:
            yield Sandbox(
                _url(token_sock), _url(api_sock), database_url, where, loop, registry, servers
            )
        finally:
            for server in servers:
                server.should_exit = True
            thread.join(10)
            token_sock.close()
            api_sock.close()
