"""Reading what a TAAP server answers: error bodies and ``Retry-After`` (docs/server.md), and
naming why it did not answer (refused, DNS, TLS, timeout) when a request never got through."""

from __future__ import annotations

import errno
import json
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from taap.errors import (
    RateLimitedError,
    TaapError,
    TransportError,
    UnavailableError,
    error_from_wire,
)

__all__ = [
    "error_from_response",
    "failure_cause",
    "json_object",
    "parse_retry_after",
    "transport_error",
]

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
    """The typed error for an HTTP error answer: the error body when there is one.

    A body that is not an error object (docs/protocol.md#errors) (a proxy's HTML page, say) gives a
    :class:`TaapError` carrying only the status, so nothing of an unknown payload reaches a message.
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


# -- requests that got no answer -------------------------------------------------------------
_TIMEOUTS: Mapping[type[httpx.TimeoutException], tuple[str, str, str]] = {
    httpx.ConnectTimeout: ("connect", "connect timeout", "no connection"),
    httpx.ReadTimeout: ("read", "read timeout", "no answer"),
    httpx.WriteTimeout: ("write", "write timeout", "the request not sent"),
    httpx.PoolTimeout: ("pool", "pool timeout", "no free connection"),
}
_DNS_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_UNREACHABLE = {errno.ENETUNREACH: "network unreachable", errno.EHOSTUNREACH: "host unreachable"}


def _chain(exc: BaseException, seen: set[int] | None = None) -> Iterator[BaseException]:
    # httpx wraps httpcore's error, which wraps the socket's or ssl's: the cause is at the end.
    # A name with several addresses fails as a group, one error per address tried.
    seen = set() if seen is None else seen
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            for inner in current.exceptions:
                yield from _chain(inner, seen)
        current = current.__cause__ or current.__context__


def _timeout(exc: httpx.TimeoutException) -> str:
    phase, name, outcome = next(
        (v for k, v in _TIMEOUTS.items() if isinstance(exc, k)), ("", "timeout", "no answer")
    )
    try:
        seconds = exc.request.extensions.get("timeout", {}).get(phase)
    except RuntimeError:  # an exception raised without its request
        seconds = None
    return f"{name} ({outcome} within {seconds:g} s)" if seconds else name


def _os_cause(exc: OSError) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failure: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or type(exc).__name__).lower().replace("_", " ")
        hint = " (is it a plain-HTTP server?)" if reason == "wrong version number" else ""
        return f"TLS failure: {reason}{hint}"
    if isinstance(exc, socket.gaierror):
        if exc.errno in _DNS_NOT_FOUND:
            return "DNS name not found"
        return f"DNS lookup failed ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if exc.errno in _UNREACHABLE:
        return _UNREACHABLE[exc.errno]
    return None


def failure_cause(exc: httpx.HTTPError) -> str:
    """Why a request got no answer, in words: ``connection refused``, ``DNS name not found``,
    ``TLS failure: …``, ``connect timeout (…)``, ``read timeout (…)``, or httpx's own text."""
    if isinstance(exc, httpx.TimeoutException):
        return _timeout(exc)
    for link in _chain(exc):
        if isinstance(link, OSError) and (cause := _os_cause(link)):
            return cause
    text = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def transport_error(target: str, exc: httpx.HTTPError, *, attempts: int = 1) -> TransportError:
    """The :class:`TransportError` for a request to ``target`` (``the token server <url>``, a
    URL) that ``exc`` kept from being answered, naming the cause; ``attempts`` made in all."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        verb = "cannot connect to"
    elif isinstance(exc, httpx.WriteError | httpx.WriteTimeout):
        verb = "cannot send the request to"
    else:
        verb = "no answer from"
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    return TransportError(f"{verb} {target}: {failure_cause(exc)}{tries}")
