"""The token a token server returns, parsed from its step-2 response (docs/pop.md,
docs/server.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taap.client.wire import error_from_response, json_object
from taap.errors import TransportError

__all__ = ["Token", "parse_expires_in", "token_from_response"]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Token:
    """Access and ID token with their expiry (epoch seconds, from the client's clock).

    ``body`` is the response exactly as received (what ``taap token --json`` prints). The repr
    shows neither token: a Bearer token is a credential until it expires.
    """

    access_token: str
    id_token: str | None
    expires_in: int
    obtained_at: float
    scope: str = ""
    status: str | None = None
    body: bytes = field(default=b"")

    @property
    def expires_at(self) -> float:
        """When the server's lifetime ends, on the clock that stamped ``obtained_at``."""
        return self.obtained_at + self.expires_in

    def usable(self, now: float, margin: float) -> bool:
        """True while at least ``margin`` seconds of lifetime remain."""
        return now < self.expires_at - margin

    def __repr__(self) -> str:
        return (
            f"Token(access_token=<{len(self.access_token)} chars>, "
            f"expires_in={self.expires_in}, expires_at={self.expires_at:.0f})"
        )


def parse_expires_in(value: object) -> int:
    """``expires_in`` as whole seconds, given as a string (``"3599"``, TAAP) or a number (RFC).

    Raises:
        ValueError: missing, negative, boolean, non-finite or not a number.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError("expires_in missing or not a number")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("expires_in is not finite")
        seconds = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        seconds = int(value.strip())
    else:
        raise ValueError("expires_in is not a number of seconds")
    if seconds < 0:
        raise ValueError("expires_in is negative")
    return seconds


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def token_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, obtained_at: float
) -> Token:
    """The :class:`Token` of a 200 response, or the typed error the server described.

    ``obtained_at`` is the time the request was *sent*, so the cached expiry errs early.

    Raises:
        TaapError: the error of a non-200 answer (see :func:`error_from_response`).
        TransportError: a 200 whose body is not a usable token response.
    """
    if status != 200:
        raise error_from_response(status, headers, body)
    data = json_object(body)
    access = data.get("access_token") if data is not None else None
    if data is None or not isinstance(access, str) or not access:
        raise TransportError("token server answered 200 without an access_token")
    try:
        expires_in = parse_expires_in(data.get("expires_in"))
    except ValueError as exc:
        raise TransportError(f"token server answered an unusable expires_in: {exc}") from exc
    return Token(
        access_token=access,
        id_token=_optional_str(data, "id_token"),
        expires_in=expires_in,
        obtained_at=obtained_at,
        scope=_optional_str(data, "scope") or "",
        status=_optional_str(data, "status"),
        body=body,
    )
