"""The guard's A6 error response: JSON body, ``WWW-Authenticate`` on 401 (TAAP.md A6)."""

from __future__ import annotations

import json

from taap.errors import TaapError

__all__ = ["WWW_AUTHENTICATE", "error_response"]

WWW_AUTHENTICATE = 'Bearer realm="taap", error="invalid_token"'


def error_response(exc: TaapError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the A6 answer to ``exc``."""
    body = json.dumps(exc.to_dict(), separators=(",", ":")).encode("utf-8")
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    headers.extend((name.lower(), value) for name, value in exc.wire_headers().items())
    if exc.status_code == 401:
        headers.append(("www-authenticate", WWW_AUTHENTICATE))
    return exc.status_code, headers, body
