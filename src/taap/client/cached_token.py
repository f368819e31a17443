"""Token cache with single-flight refresh for threads and for asyncio tasks.

A token is reused until ``margin`` seconds before it expires (capped at half its lifetime, so a
short-lived token is still reused). When it is missing or due, exactly one caller fetches while
the others wait on a lock and then take the fresh token: 32 threads or 100 tasks asking at once
cost one token request, not 32 or 100.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Awaitable, Callable

from taap.client.token_response import Token

__all__ = ["Clock", "TokenCache"]

Clock = Callable[[], float]


class TokenCache:
    """Holds one token; ``get``/``aget`` return it or fetch a new one, one fetch at a time."""

    def __init__(self, *, margin: float = 60.0, clock: Clock = time.time) -> None:
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.margin = margin
        self.clock = clock
        self._token: Token | None = None
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        # asyncio locks belong to one event loop; keep one per loop the cache is used from.
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> Token | None:
        """The cached token while it is still usable, else ``None``."""
        token = self._token
        if token is None:
            return None
        margin = min(self.margin, token.expires_in / 2)
        return token if token.usable(self.clock(), margin) else None

    def held(self) -> Token | None:
        """The cached token, usable or not (what ``TokenClient.revoke()`` revokes)."""
        return self._token

    def store(self, token: Token) -> None:
        """Make ``token`` the cached one."""
        self._token = token

    def invalidate(self, stale: Token) -> None:
        """Drop ``stale`` unless another caller already replaced it (then keep the newer one)."""
        if self._token is stale:
            self._token = None

    def get(self, fetch: Callable[[], Token]) -> Token:
        """The usable token, or the result of ``fetch`` run by one thread at a time."""
        token = self.current()
        if token is not None:
            return token
        with self._lock:
            token = self.current()
            if token is None:
                token = fetch()
                if self._token is not token:  # a TokenClient's fetch stored it already
                    self.store(token)
            return token

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
            return lock

    async def aget(self, fetch: Callable[[], Awaitable[Token]]) -> Token:
        """The usable token, or the result of ``fetch`` awaited by one task at a time."""
        token = self.current()
        if token is not None:
            return token
        async with self._async_lock():
            token = self.current()
            if token is None:
                token = await fetch()
                if self._token is not token:
                    self.store(token)
            return token

    def __repr__(self) -> str:
        state = "empty" if self._token is None else repr(self._token)
        return f"TokenCache(margin={self.margin}, token={state})"
