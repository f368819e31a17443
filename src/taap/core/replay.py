"""One hop: atomic check-and-record of ``(client_id, jti)`` (docs/pop.md, SECURITY.md R1-R4).

The store is asked only after every other check of a request passed, so a failed request never
burns a jti. Each record carries the PoP's ``iat``: a shared store that lost its state (a
restart without persistence, a flush, a failover) cannot vouch for PoPs issued before the loss,
and :class:`EpochRule` says which ones it refuses and for how long (docs/deploy.md, "Replay
store epoch"). :class:`MemoryReplayStore` serves one process and ends with it (a restarted
process starts empty: SECURITY.md lists it among the residual risks); it takes ``iat`` without
using it. Its memory is bounded: expired entries are evicted on every call (a min-heap on
expiry, O(log n)); when ``capacity`` live entries are held it refuses with
:class:`~taap.errors.UnavailableError` (fail closed) and never evicts a live entry. Each entry
holds a 16-byte BLAKE2 key, its expiry and a heap slot: measured with ``tracemalloc`` on
CPython 3.11, about 190 bytes per entry (200 at the peak while the heap list grows), so the
default 500,000 entries bound the store to roughly 100 MB.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from taap.core.pop import STRICT, PopPolicy
from taap.errors import UnavailableError

__all__ = [
    "DEFAULT_CAPACITY",
    "EpochRule",
    "MemoryReplayStore",
    "ReplayStore",
    "issued_at",
    "replay_key",
]

DEFAULT_CAPACITY = 500_000


def replay_key(client_id: str, jti: str) -> bytes:
    """A fixed-size key for ``(client_id, jti)``; the length prefix keeps pairs distinct."""
    # A separator alone is ambiguous once a client_id may hold it ("a\0b"+"c" vs "a"+"b\0c").
    # surrogatepass: hashing must never raise, whatever text a caller passes.
    text = f"{len(client_id)}:{client_id}\x00{jti}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def issued_at(claims: Mapping[str, Any]) -> int | None:
    """A verified PoP's ``iat`` as the replay store takes it (None: the policy let it go)."""
    iat = claims.get("iat")
    return iat if type(iat) is int else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochRule:
    """Which PoPs a store refuses after it lost its state, and for how long.

    The *epoch* is the moment (whole seconds, rounded up) a store found its state gone. A PoP
    accepted before the loss had ``iat <= accepted_at + leeway < epoch + leeway``, so every
    PoP with ``iat < epoch + leeway`` (or with no ``iat``) is one the store cannot vouch for.
    Such a PoP stops passing the time checks once ``now - iat > max_age + leeway`` or
    ``now > exp + leeway`` with ``exp - iat <= max_ttl``: it cannot be accepted from
    ``epoch + min(max_age, max_ttl) + 2 * leeway`` on. ``window`` is the protocol's
    ``max(max_age, max_ttl) + leeway``, stretched to that bound when the two caps are within one
    leeway of each other (with the default settings it is the protocol's 130 s).
    """

    leeway: int = 10
    window: int = 130

    def __post_init__(self) -> None:
        if self.leeway < 0 or self.window < self.leeway:
            raise ValueError("epoch rule: need 0 <= leeway <= window")

    @classmethod
    def for_policy(cls, policy: PopPolicy = STRICT) -> EpochRule:
        """The rule for PoPs judged by ``policy`` (its leeway, lifetime cap and age cap)."""
        leeway = math.ceil(policy.leeway)
        longer = math.ceil(max(policy.max_age, policy.max_ttl))
        shorter = math.ceil(min(policy.max_age, policy.max_ttl))
        return cls(leeway=leeway, window=max(longer + leeway, shorter + 2 * leeway))

    @staticmethod
    def epoch_at(now: float) -> int:
        """The epoch recorded when a loss is found at ``now`` (rounded up: the lost records were
        all written before ``now``)."""
        return math.ceil(now)

    def refuses(self, *, epoch: int, iat: int | None, now: float) -> bool:
        """True when a PoP issued at ``iat`` may have been recorded before ``epoch``."""
        return now < epoch + self.window and (iat is None or iat < epoch + self.leeway)

    def retry_after(self, *, epoch: int, iat: int | None, now: float) -> int:
        """Seconds until a fresh PoP passes (``epoch + leeway``; without ``iat``, the window's
        end), at least 1."""
        until = epoch + (self.window if iat is None else self.leeway)
        return max(1, math.ceil(until - now))


class ReplayStore(Protocol):
    """Atomic check-and-record shared by everything that accepts PoPs."""

    async def record(
        self, client_id: str, jti: str, *, until: float, now: float, iat: int | None = None
    ) -> bool:
        """Record ``(client_id, jti)`` until ``until``; False when it was already recorded.

        ``iat`` is the PoP's issue time (None when the policy let it go without one): a store
        that lost its state refuses the PoPs issued before the loss (:class:`EpochRule`).

        Raises:
            UnavailableError: the store is full or unreachable, or lost its state and cannot
                vouch for this PoP (the caller answers 503 with the error's ``Retry-After``).
        """
        ...

    async def ping(self) -> bool:
        """True when the store can take records (readiness)."""
        ...


class MemoryReplayStore:
    """In-process replay store with a hard bound on live entries."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        # Records may come from several threads (sync apps); the lock costs ~0.1 us.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _evict(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            expiry.pop(key, None)

    def record_sync(
        self, client_id: str, jti: str, *, until: float, now: float, iat: int | None = None
    ) -> bool:
        """Synchronous :meth:`record` (no awaits: atomic within one event loop or thread).
        ``iat`` is not used: this store's state ends only with the process that asks it.

        Raises:
            UnavailableError: ``capacity`` live entries are held.
        """
        key = replay_key(client_id, jti)
        with self._lock:
            self._evict(now)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self.capacity:
                raise UnavailableError(log_detail="in-process replay store is full")
            self._expiry[key] = until
            heapq.heappush(self._heap, (until, key))
        return True

    async def record(
        self, client_id: str, jti: str, *, until: float, now: float, iat: int | None = None
    ) -> bool:
        """See :meth:`ReplayStore.record`."""
        return self.record_sync(client_id, jti, until=until, now=now, iat=iat)

    def contains(self, client_id: str, jti: str, *, now: float) -> bool:
        """True when ``(client_id, jti)`` is recorded and live (for tests and audits)."""
        until = self._expiry.get(replay_key(client_id, jti))
        return until is not None and until > now

    async def ping(self) -> bool:
        return True
