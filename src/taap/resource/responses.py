"""The guard's error answer: JSON body, ``WWW-Authenticate`` on 401 (docs/server.md)."""

from __future__ import annotations

from taap.asgi import render_error
from taap.errors import TaapError

__all__ = ["WWW_AUTHENTICATE", "error_response"]

WWW_AUTHENTICATE = 'Bearer realm="taap", error="invalid_token"'
_CHALLENGE = WWW_AUTHENTICATE.encode("latin-1")


def error_response(exc: TaapError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (text, for frameworks) and body of the error answer to ``exc``."""
    status, headers, body = render_error(exc, www_authenticate=_CHALLENGE)
    return (
        status,
        [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            *((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers),
        ],
        body,
    )
