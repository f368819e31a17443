"""Counting usage on the request path, writing it in the background.

:meth:`UsageRecorder.count` is what a token server's or a guard's audit calls once per
decision: a dict increment, no I/O, no await, never an exception. A background task, started
by the first count and ending when nothing is left, hands the counts to a writer once a
second (one upsert of a few rows, whatever the request rate). A write that fails or takes
longer than ``write_timeout`` loses that batch: it is counted in ``failures`` and logged,
never raised, and never holds up a request. Distinct keys waiting for a write are capped
(``max_pending``), so a flood of made-up client ids costs bounded memory (``dropped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from taap.server.usage.store import Count
from taap.server.usage.tables import KINDS

__all__ = ["RETENTION_MINUTES", "UsageRecorder", "UsageWriter"]

log = logging.getLogger("taap.server")
#: Rows older than a week and a day are pruned: the portal shows a week at most.
RETENTION_MINUTES = 8 * 24 * 60
_PRUNE_EVERY = 3600.0
_KINDS = frozenset(KINDS)


class UsageWriter(Protocol):
    async def add(self, rows: Iterable[Count]) -> None: ...

    async def prune(self, before_minute: int) -> None: ...


class UsageRecorder:
    """Per-minute usage counts of one process, flushed to a shared writer."""

    def __init__(
        self,
        writer: UsageWriter,
        *,
        interval: float = 1.0,
        write_timeout: float = 10.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.time,
        on_lost: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_lost(reason, events)`` hears of counts lost: ``write_failed`` (a batch) or
        ``over_cap`` (one event); e.g. a Prometheus counter's ``labels(reason).inc``."""
        self._writer = writer
        self._on_lost = on_lost
        self.interval = interval
        self.write_timeout = write_timeout
        self.max_pending = max_pending
        self._clock = clock
        self._pending: dict[tuple[str, str, str, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._next_prune = 0.0
        #: batches lost to a failed or slow write; counts refused by the ``max_pending`` cap
        self.failures = 0
        self.dropped = 0
        self.written = 0

    def count(self, kind: str, client_id: str | None, error_code: str | None, now: float) -> None:
        """One event of ``kind`` (``token``, ``call``, ``token_refused``, ``call_refused``)
        for ``client_id`` at ``now``; events of no known client are not counted."""
        if not client_id or kind not in _KINDS or self._closed:
            return
        key = (client_id[:128], kind, (error_code or "")[:64], int(now // 60))
        pending = self._pending
        if key in pending:
            pending[key] += 1
        elif len(pending) >= self.max_pending:
            self.dropped += 1
            if self._on_lost is not None:
                self._on_lost("over_cap", 1)
            return
        else:
            pending[key] = 1
        if self._task is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread: a later count starts the task
                return
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self.interval)
                await self.flush()
        finally:
            self._task = None

    async def flush(self) -> None:
        """Write what has been counted so far (a failure is counted, not raised)."""
        if self._pending:
            batch, self._pending = self._pending, {}
            rows = [Count(c, k, e, m, n) for (c, k, e, m), n in batch.items()]
            try:
                await asyncio.wait_for(self._writer.add(rows), self.write_timeout)
                self.written += len(rows)
            except Exception as exc:
                self.failures += 1
                log.warning("usage counts lost: %d rows (%s)", len(rows), type(exc).__name__)
                if self._on_lost is not None:
                    self._on_lost("write_failed", sum(batch.values()))
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY
            try:
                await asyncio.wait_for(
                    self._writer.prune(int(now // 60) - RETENTION_MINUTES), self.write_timeout
                )
            except Exception as exc:
                log.warning("old usage counts not pruned (%s)", type(exc).__name__)

    async def close(self) -> None:
        """Stop counting, write what is left (once, time-limited)."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
