"""Token buckets for failed authentications (docs/server.md, SECURITY.md A5).

A request names its buckets (one per client_id, one per source address). :meth:`check` says
whether every bucket still holds a token without taking one; :meth:`take` takes one token from
each bucket atomically, or none when any is empty. Both return 0.0 when allowed, else the
seconds until a token is back (the ``Retry-After``). ``now`` is injected.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DEFAULT_MAX_BUCKETS", "Bucket", "MemoryRateLimiter", "Rate", "RateLimiter"]

DEFAULT_MAX_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` tokens, one more every ``per`` seconds."""

    burst: int
    per: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named bucket and its rate (``key`` such as ``client:<id>`` or ``addr:<ip>``)."""

    key: str
    rate: Rate


class RateLimiter(Protocol):
    """The limiter port shared by the in-process and Redis implementations."""

    async def check(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """0.0 when every bucket holds a token; else seconds until all do.

        Raises:
            UnavailableError: the backing store is unreachable.
        """
        ...

    async def take(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """Take one token from each bucket (all or none); 0.0 when taken, else the wait.

        Raises:
            UnavailableError: the backing store is unreachable.
        """
        ...

    async def ping(self) -> bool:
        """True when the limiter can answer (readiness)."""
        ...


class MemoryRateLimiter:
    """In-process buckets; at most ``max_buckets`` are kept (least recently used go first,
    which only ever hands a forgotten key a full bucket again)."""

    def __init__(self, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def level(self, bucket: Bucket, *, now: float) -> float:
        """Tokens in ``bucket`` at ``now`` (a full bucket when never touched)."""
        with self._lock:
            return self._level(bucket, now)

    def _level(self, bucket: Bucket, now: float) -> float:
        state = self._state.get(bucket.key)
        if state is None:
            return float(bucket.rate.burst)
        tokens, stamp = state
        refill = max(0.0, now - stamp) / bucket.rate.per
        return min(float(bucket.rate.burst), tokens + refill)

    def _wait(self, buckets: Sequence[Bucket], now: float) -> tuple[float, list[float]]:
        levels = [self._level(b, now) for b in buckets]
        wait = max(
            ((1.0 - level) * b.rate.per for b, level in zip(buckets, levels, strict=True)),
            default=0.0,
        )
        return max(wait, 0.0), levels

    async def check(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """See :meth:`RateLimiter.check`."""
        with self._lock:
            return self._wait(buckets, now)[0]

    async def take(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """See :meth:`RateLimiter.take`."""
        with self._lock:
            wait, levels = self._wait(buckets, now)
            if wait > 0:
                return wait
            for bucket, level in zip(buckets, levels, strict=True):
                self._state[bucket.key] = (level - 1.0, now)
                self._state.move_to_end(bucket.key)
            while len(self._state) > self.max_buckets:
                self._state.popitem(last=False)
            return 0.0

    async def ping(self) -> bool:
        return True
