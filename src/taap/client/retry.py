"""When and how long to wait before trying again (429, 503, connection failures).

Only answers that say "not now" are retried: 429 and 503 (docs/protocol.md#errors: the server sends
``Retry-After`` with both) and failures to reach the server. Every other 4xx is a definite "no" and
is never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["NO_RETRY", "RETRY_STATUSES", "RetryNotice", "RetryPolicy", "retry_reason"]

RETRY_STATUSES = frozenset({429, 503})
_REASONS = {429: "rate limited", 503: "server unavailable"}


def retry_reason(status: int) -> str:
    """What a retried answer means, in words (``rate limited`` for 429)."""
    return _REASONS.get(status, f"HTTP {status}")


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A retry about to happen: why, after how many seconds, and which one (1 = the first).

    ``str()`` is the line a command-line tool shows: ``rate limited, retrying in 4 s``.
    """

    reason: str
    delay: float
    retry: int

    def __str__(self) -> str:
        return f"{self.reason}, retrying in {self.delay:g} s"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff that honours ``Retry-After``.

    ``max_retries`` retries follow the first attempt. Without ``Retry-After`` the n-th wait is
    ``base_delay * 2**n`` capped at ``max_delay``. A ``Retry-After`` is obeyed as given, but
    one longer than ``max_retry_after`` ends the retries: waiting less than the server asked
    would only earn another 429, and waiting minutes inside a call surprises more than an error.

    ``on_retry`` is called with a :class:`RetryNotice` just before each wait, so a program can
    tell its user why it pauses (``taap call`` prints it on stderr); it must not raise.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    on_retry: Callable[[RetryNotice], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry settings must not be negative")

    def delay(self, retry: int, retry_after: int | None) -> float | None:
        """Seconds before retry number ``retry`` (0-based), or ``None`` to stop retrying."""
        if retry >= self.max_retries:
            return None
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_retry_after else None
        return float(min(self.base_delay * 2.0**retry, self.max_delay))

    def announce(self, reason: str, delay: float, retry: int) -> None:
        """Tell ``on_retry`` (when set) that retry number ``retry`` (0-based) follows in
        ``delay`` seconds because of ``reason``."""
        if self.on_retry is not None:
            self.on_retry(RetryNotice(reason, delay, retry + 1))


#: A policy that never retries (for callers that retry on their own).
NO_RETRY = RetryPolicy(max_retries=0)
