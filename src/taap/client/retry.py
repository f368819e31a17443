"""When and how long to wait before trying again (429, 503, connection failures).

Only answers that say "not now" are retried: 429 and 503 (docs/protocol.md#errors: the server sends
``Retry-After`` with both) and failures to reach the server. Every other 4xx is a definite "no" and
is never retried.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NO_RETRY", "RETRY_STATUSES", "RetryPolicy"]

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff that honours ``Retry-After``.

    ``max_retries`` retries follow the first attempt. Without ``Retry-After`` the n-th wait is
    ``base_delay * 2**n`` capped at ``max_delay``. A ``Retry-After`` is obeyed as given, but
    one longer than ``max_retry_after`` ends the retries: waiting less than the server asked
    would only earn another 429, and waiting minutes inside a call surprises more than an error.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

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


#: A policy that never retries (for callers that retry on their own).
NO_RETRY = RetryPolicy(max_retries=0)
