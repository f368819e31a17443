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
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import uvicorn

from taap.core.keys import PublicKey
from taap.errors import UnavailableError
from taap.resource.sample import create_sample_app
from taap.resource.settings import GuardSettings
from taap.server.app import create_app
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import ClientRecord, Registry
from taap.server.registry.sql import open_registry
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
        token_url = f"http://127.0.0.1:{token_sock.getsockname()[1]}"
        api_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        state: dict[str, Any] = {}

        async def serve() -> None:
            try:
                pepper = load_pepper(parse_database_url(database_url), environ={})
                registry = await open_registry(database_url, pepper=pepper)
                settings = ServerSettings.load(
                    database_url=database_url,
                    public_url=token_url,
                    port=token_sock.getsockname()[1],
                    token_ttl=token_ttl,
                )
                token_app = create_app(settings, registry, pepper=pepper)
                api_app = create_sample_app(
                    token_url, replay_store=token_app.replay_store, settings=GuardSettings()
                )
                apps: tuple[tuple[Any, Literal["on", "off"]], ...] = (
                    (token_app, "on"),
                    (api_app, "off"),
                )
                servers = [
                    uvicorn.Server(
                        uvicorn.Config(app, log_level="warning", access_log=False, lifespan=life)
                    )
                    for app, life in apps
                ]
                state.update(registry=registry, servers=servers)
                tasks = [
                    asyncio.ensure_future(servers[0].serve(sockets=[token_sock])),
                    asyncio.ensure_future(servers[1].serve(sockets=[api_sock])),
                ]
                while not all(s.started for s in servers):
                    if any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.01)
                ready.set()
                await asyncio.gather(*tasks)
            except BaseException as exc:
                state["error"] = exc
                ready.set()
                raise

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                # A failure is reported through state["error"]; the thread just ends.
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(serve())
            finally:
                loop.close()

        thread = threading.Thread(target=main, name="taap-sandbox", daemon=True)
        thread.start()
        if not ready.wait(START_TIMEOUT) or "error" in state:
            raise UnavailableError(
                "the sandbox servers did not start", log_detail=repr(state.get("error"))
            )
        servers: list[uvicorn.Server] = state["servers"]
        if not all(s.started for s in servers):
            raise UnavailableError("the sandbox servers did not start")
        sandbox = Sandbox(
            token_url=token_url,
            api_url=api_url,
            database_url=database_url,
            folder=where,
            loop=loop,
            registry=state["registry"],
            _servers=servers,
        )
        try:
            yield sandbox
        finally:
            for server in servers:
                server.should_exit = True
            thread.join(10)
            token_sock.close()
            api_sock.close()
