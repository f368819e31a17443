"""RevocationWatcher's refresh rules, driven by an injected clock and an in-memory log.

End-to-end behaviour (token server feed, separate guards, nodes) is in tests/revocation/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from taap.core.revocation import RevocationEntry
from taap.errors import TokenRevokedError, UnavailableError
from taap.resource.revocations import RevocationWatcher

T0 = 1_800_000_000.0


class Log:
    """The registry's log as the watcher sees it: rows after a seq, or an outage."""

    def __init__(self) -> None:
        self.rows: list[RevocationEntry] = []
        self.down = False
        self.calls: list[int] = []
        self.gate: asyncio.Event | None = None

    def revoke(self, jti: str) -> None:
        self.rows.append(
            RevocationEntry(
                seq=len(self.rows) + 1, kind="token", client_id="c1", jti=jti, expires_at=2**40
            )
        )

    async def __call__(self, after: int) -> Sequence[RevocationEntry]:
        self.calls.append(after)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise UnavailableError(log_detail="feed down")
        return [row for row in self.rows if row.seq > after]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def _check(watcher: RevocationWatcher, jti: str) -> None:
    state, now = await watcher.current()
    state.check_token(client_id="c1", jti=jti, iat=int(T0), now=now)


async def test_first_request_waits_for_the_first_fetch() -> None:
    log, clock = Log(), Clock()
    log.revoke("gone")
    watcher = RevocationWatcher(log, max_age=5, clock=clock)
    with pytest.raises(TokenRevokedError):
        await _check(watcher, "gone")
    await _check(watcher, "fine")
    assert log.calls == [0]


async def test_a_busy_guard_refreshes_in_the_background_once_per_interval() -> None:
    log, clock = Log(), Clock()
    watcher = RevocationWatcher(log, max_age=5, interval=1, clock=clock)
    await _check(watcher, "a")
    clock.now += 0.5
    await _check(watcher, "a")
    assert len(log.calls) == 1  # within the interval: no fetch
    log.revoke("a")
    clock.now += 0.6
    await _check(watcher, "a")  # served from the old state; a refresh starts
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log.calls == [0, 0]
    with pytest.raises(TokenRevokedError):
        await _check(watcher, "a")
    assert watcher.state.seq == 1


async def test_a_change_older_than_max_age_is_always_seen() -> None:
    log, clock = Log(), Clock()
    watcher = RevocationWatcher(log, max_age=5, interval=100, clock=clock)
    await _check(watcher, "a")
    log.revoke("a")
    clock.now += 5.01
    with pytest.raises(TokenRevokedError):
        await _check(watcher, "a")


async def test_outage_fails_closed_after_max_age_and_recovers() -> None:
    log, clock = Log(), Clock()
    watcher = RevocationWatcher(log, max_age=5, clock=clock)
    await _check(watcher, "a")
    log.down = True
    clock.now += 3
    await _check(watcher, "a")  # still within max_age
    clock.now += 3
    with pytest.raises(UnavailableError):
        await _check(watcher, "a")
    assert watcher.failures >= 1
    log.down = False
    await _check(watcher, "a")


async def test_concurrent_stale_requests_share_one_fetch() -> None:
    log, clock = Log(), Clock()
    log.gate = asyncio.Event()
    watcher = RevocationWatcher(log, max_age=5, clock=clock)
    checks = [asyncio.create_task(_check(watcher, "a")) for _ in range(20)]
    await asyncio.sleep(0.01)
    log.gate.set()
    await asyncio.gather(*checks)
    assert log.calls == [0]
