"""How a guard keeps its revocation state fresh (docs/guard.md, "Live authorization").

:class:`RevocationWatcher` owns a :class:`~taap.core.revocation.RevocationState` and a fetch
function that returns the log rows after a given ``seq``: :class:`RevocationFeed` reads the token
server's feed over HTTP (a separate guard, the gateway); the token server's own guard reads its
registry. No task runs in the background between requests: a request that finds the state older
than ``interval`` starts one refresh for everybody and goes on with the state it has, and a
request that finds it older than ``max_age`` waits for a refresh and is refused (503) if that
fails. So an idle guard makes no calls, a busy one makes at most one per ``interval``, and no
request is ever answered from a state that could miss a change made ``max_age`` ago.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from taap.core.revocation import RevocationEntry, RevocationState, entries_from_wire
from taap.core.strict_json import JsonError, loads_strict
from taap.errors import UnavailableError
from taap.resource.keys import check_fetch_url
from taap.resource.metrics import revocations_refreshed

__all__ = ["FEED_PATH", "FetchRevocations", "RevocationFeed", "RevocationWatcher"]

#: the token server's revocation feed, below its base URL
FEED_PATH = "/oauth2/v1/revocations"
#: rows per feed page; the fetcher asks again while pages come back full
PAGE_SIZE = 5000
MAX_FEED_BYTES = 4 * 1024 * 1024

log = logging.getLogger("taap.resource")

#: rows with ``seq`` above the argument, oldest first; raises UnavailableError when it cannot
FetchRevocations = Callable[[int], Awaitable[Sequence[RevocationEntry]]]


class RevocationFeed:
    """Fetches ``GET <base>/oauth2/v1/revocations?after=SEQ`` page by page."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.url = check_fetch_url(base_url.rstrip("/")) + FEED_PATH
        # No connection is kept between fetches (at most one a second): a pooled one would
        # outlive the event loop of a guard that stops without closing the feed.
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def __call__(self, after: int) -> Sequence[RevocationEntry]:
        """See :data:`FetchRevocations`."""
        rows: list[RevocationEntry] = []
        while True:
            page = await self._page(after)
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows
            after = page[-1].seq

    async def _page(self, after: int) -> list[RevocationEntry]:
        params = {"after": str(after), "limit": str(PAGE_SIZE)}
        try:
            async with self._client.stream("GET", self.url, params=params) as resp:
                if resp.status_code != 200:
                    status = resp.status_code
                    raise UnavailableError(log_detail=f"revocation feed answered {status}")
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_FEED_BYTES:
                        raise UnavailableError(log_detail="revocation feed page too large")
        except httpx.HTTPError as exc:
            raise UnavailableError(log_detail=f"revocation feed: {type(exc).__name__}") from exc
        try:
            document: Any = loads_strict(bytes(data))
            return entries_from_wire(document.get("entries"))
        except (JsonError, ValueError, AttributeError) as exc:
            raise UnavailableError(log_detail="revocation feed: malformed document") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


class RevocationWatcher:
    """A revocation state kept within ``max_age`` of the registry, refreshed on demand.

    ``interval`` (default a fifth of ``max_age``, at least 0.2 s) is how stale the state may get
    before a request starts a background refresh; ``clock`` gives POSIX seconds (injected).
    """

    def __init__(
        self,
        fetch: FetchRevocations,
        *,
        max_age: float = 5.0,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = RevocationState(max_age=max_age)
        self.interval = interval if interval is not None else max(0.2, max_age / 5)
        self._fetch = fetch
        self._clock = clock
        self._lock: asyncio.Lock | None = None
        self._background: asyncio.Task[bool] | None = None
        self._failing = False
        #: fetches tried and fetches failed (tests, metrics)
        self.fetches = 0
        self.failures = 0

    def fresh_state(self) -> tuple[RevocationState, float] | None:
        """The state and the time to judge by, when no refresh is due (the hot path: a clock
        read, no coroutine); ``None`` when one is, and the caller awaits :meth:`current`."""
        now = self._clock()
        if now - self.state.fresh_at <= self.interval:
            return self.state, now
        return None

    async def current(self) -> tuple[RevocationState, float]:
        """The state to judge a request with, and the time to judge it at."""
        now = self._clock()
        age = now - self.state.fresh_at
        if age > self.state.max_age:
            await self.refresh()
            now = self._clock()
        elif age > self.interval and (self._background is None or self._background.done()):
            self._background = asyncio.get_running_loop().create_task(self.refresh())
        return self.state, now

    async def refresh(self) -> bool:
        """Fetch the rows after the state's ``seq``; one fetch at a time, shared by waiters."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        asked = self._clock()
        async with self._lock:
            if self.state.fresh_at >= asked:
                return True  # a fetch that started after this call was made has landed
            started = self._clock()
            self.fetches += 1
            try:
                entries = await self._fetch(self.state.seq)
            except Exception as exc:
                # Anything but UnavailableError is a bug in the fetch; either way the state
                # stays as it was and ages towards the 503 of fail-closed.
                self.failures += 1
                revocations_refreshed(False, 0)
                if not self._failing:  # one line per outage, not one per request
                    detail = type(exc).__name__
                    if isinstance(exc, UnavailableError):
                        detail = exc.log_detail or detail
                    log.warning("revocation state refresh failed: %s", detail)
                self._failing = True
                return False
            if self._failing:
                log.warning("revocation state refreshed again after a failure")
            self._failing = False
            self.state.apply(entries, fetched_at=started)
            self.state.prune(started)
            revocations_refreshed(True, len(self.state))
            return True
