"""Small ASGI request helpers shared by the middleware and the route dependency."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from taap.errors import RequestMalformedError
from taap.resource._asgi import Scope

__all__ = ["content_length", "raw_path_of"]


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared ``Content-Length``, or None.

    Raises:
        RequestMalformedError: a value that is not a decimal number.
    """
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                raise RequestMalformedError("invalid Content-Length")
            return int(text)
    return None


def raw_path_of(scope: Scope) -> bytes:
    """The request path as sent (still percent-encoded), without the query."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).partition(b"?")[0]
    # Servers that omit raw_path give only the decoded path; re-escape what must be escaped.
    path = str(scope["path"])
    return quote(path, safe="/:@!$&'()*+,;=-._~").encode("ascii")
