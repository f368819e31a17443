"""What to do after an API answered: done, new token and retry once, or wait and retry.

Shared by the httpx and ``requests`` adapters so both follow one rule (issue 4):

* 401 with ``error`` ``invalid_token`` (A6 ``token_invalid``) → get a new token, retry once;
* 429 / 503 → retry with a fresh PoP after ``Retry-After`` or the backoff (bounded);
* anything else → hand the answer to the caller; other 4xx are never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from taap.client.retry import RETRY_STATUSES, RetryPolicy
from taap.client.wire import parse_retry_after

__all__ = ["Attempt", "is_invalid_token", "next_step"]


@dataclass(slots=True)
class Attempt:
    """Where one call stands: how many 429/503 retries so far, and whether it re-tokened."""

    retries: int = 0
    refreshed: bool = False


def is_invalid_token(status: int, read_json: Callable[[], object]) -> bool:
    """True when an API answered 401 because of the Bearer token (A6 ``token_invalid``)."""
    if status != 401:
        return False
    try:
        data = read_json()
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    return data.get("error") == "invalid_token" or data.get("error_code") == "token_invalid"


def next_step(
    status: int,
    retry_after: str | None,
    read_json: Callable[[], object],
    attempt: Attempt,
    policy: RetryPolicy,
) -> Literal["done", "refresh"] | float:
    """``"done"``, ``"refresh"`` (new token, then retry), or seconds to wait before a retry."""
    if status == 401:
        if not attempt.refreshed and is_invalid_token(status, read_json):
            attempt.refreshed = True
            return "refresh"
        return "done"
    if status in RETRY_STATUSES:
        delay = policy.delay(attempt.retries, parse_retry_after(retry_after))
        if delay is not None:
            attempt.retries += 1
            return delay
    return "done"
