"""Reading what a TAAP server answers: A6 error bodies and ``Retry-After`` (TAAP.md A6)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from taap.errors import (
    RateLimitedError,
    TaapError,
    TransportError,
    UnavailableError,
    error_from_wire,
)

__all__ = ["error_from_response", "json_object", "parse_retry_after"]

_MAX_ERROR_BODY = 64 * 1024


def json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON object, or ``None`` when it is anything else."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> int | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0, int(when.timestamp() - current + 0.999))


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> TaapError:
    """The typed error for an HTTP error answer: the A6 body when there is one.

    A body that is not an A6 object (a proxy's HTML page, say) gives a :class:`TaapError`
    carrying only the status, so nothing of an unknown payload reaches a message.
    """
    retry_after = parse_retry_after(headers.get("retry-after"))
    data = json_object(body[:_MAX_ERROR_BODY]) if len(body) <= _MAX_ERROR_BODY else None
    if data is not None and ("error_code" in data or "error" in data):
        return error_from_wire(status, data, retry_after=retry_after)
    if status == 429:
        return RateLimitedError(retry_after=retry_after)
    if status == 503:
        return UnavailableError(retry_after=retry_after)
    if status in (502, 504):
        return TransportError(f"server answered HTTP {status}", retry_after=retry_after)
    return error_from_wire(status, {}, retry_after=retry_after)
