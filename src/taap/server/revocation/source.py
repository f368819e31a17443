"""The token server's view of the revocation log: the fetch function over its own registry, and
the revocation state that introspection judges with.

:func:`registry_revocations` is the registry-side twin of the guard's HTTP feed reader: the same
call shape (``after`` → the rows that follow), read straight from the registry, for a guard
that runs in this process. :class:`RegistryRevocations` is the state introspection uses by
default; anything with the same ``current()`` (the guard's ``RevocationWatcher``) can take its
place on the app, so that introspection and an in-process guard judge from one state.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from taap.core.revocation import RevocationEntry, RevocationState
from taap.server.registry.port import RegistryReader

__all__ = [
    "FEED_PAGE",
    "FetchRevocations",
    "RegistryRevocations",
    "RevocationSource",
    "registry_revocations",
]

#: rows per registry read (and the feed's largest page): a page that comes back full is
#: followed by another read
FEED_PAGE = 5000

#: the rows with a ``seq`` above the argument, oldest first; ``UnavailableError`` when the
#: registry cannot be read
FetchRevocations = Callable[[int], Awaitable[Sequence[RevocationEntry]]]


def registry_revocations(registry: RegistryReader, *, page: int = FEED_PAGE) -> FetchRevocations:
    """A :data:`FetchRevocations` that reads ``registry`` directly, page after page.

    Raises (from the returned function):
        UnavailableError: the registry cannot be read.
    """

    async def fetch(after: int) -> Sequence[RevocationEntry]:
        rows: list[RevocationEntry] = []
        while True:
            batch = await registry.revocations_after(after, limit=page)
            rows.extend(batch)
            if len(batch) < page:
                return rows
            after = batch[-1].seq

    return fetch


class RevocationSource(Protocol):
    """Where an endpoint gets the revocation state to judge a token with, and the time to
    judge it at (the guard's ``RevocationWatcher`` is one)."""

    async def current(self) -> tuple[RevocationState, float]: ...


class RegistryRevocations:
    """A revocation state brought up to date on every :meth:`current` call.

    One read of the rows after the state's ``seq`` per call: introspection is not a hot path,
    and this way its answer is never older than the call. Concurrent calls need no lock: the
    state is the union of what it was told, so two overlapping reads merge to the same state.
    A failed read raises (503) rather than answer from an old state.
    """

    def __init__(
        self,
        fetch: FetchRevocations,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = RevocationState(max_age=max_age)
        self._fetch = fetch
        self._clock = clock

    async def current(self) -> tuple[RevocationState, float]:
        """The state, complete as of this call, and the time to judge at.

        Raises:
            UnavailableError: the registry cannot be read.
        """
        started = self._clock()
        entries = await self._fetch(self.state.seq)
        self.state.apply(entries, fetched_at=started)
        self.state.prune(started)
        return self.state, self._clock()
