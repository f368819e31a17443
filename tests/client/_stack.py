"""The real token server (``taap.server.app.create_app``) with the A9 sample APIs behind it.

One ASGI app serves both: the token endpoints, and (as the server's ``fallback``) the guarded
sample APIs, which trust the registry's signing key and share the server's replay store. A thin
wrapper counts the token requests that reach it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taap.core import PrivateKey
from taap.core.replay import MemoryReplayStore
from taap.resource.keys import StaticKeys
from taap.resource.sample import create_sample_app
from taap.server.app import create_app
from taap.server.registry.memory import MemoryRegistry
from taap.server.settings import ServerSettings

PEPPER = b"client-tests-pepper-0123456789"
APIS = ("connectivity", "sms-notification", "call-verification")


@dataclass
class Stack:
    """The ASGI app, the registered client, and a count of token requests seen."""

    app: Any
    client_id: str
    secret: str
    base_url: str
    token_requests: int = 0
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
            if scope["path"].endswith("/tokens"):
                self.token_requests += 1
        await self.app(scope, receive, send)


def build_stack(
    client_key: PrivateKey,
    server_key: PrivateKey,
    base_url: str,
    *,
    clock: Callable[[], float] = time.time,
    replay_capacity: int = 10_000,
) -> Stack:
    """A token server + sample APIs with one client subscribed to ``APIS``."""
    registry = MemoryRegistry(PEPPER, signing_key=server_key, clock=clock)
    record, secret = asyncio.run(
        registry.create_client(name="client tests", keys=[client_key.public], apis=APIS)
    )
    settings = ServerSettings(public_url=base_url)
    signing = asyncio.run(registry.signing_keys())
    replay = MemoryReplayStore(replay_capacity)
    sample = create_sample_app(
        keys=StaticKeys({k.kid: k.key.public for k in signing}, issuer=settings.issuer_url),
        replay_store=replay,
        clock=clock,
    )
    app = create_app(
        settings, registry, pepper=PEPPER, replay_store=replay, fallback=sample, clock=clock
    )
    return Stack(app=app, client_id=record.client_id, secret=secret, base_url=base_url)
