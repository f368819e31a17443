"""ASGI plumbing of the token server: capped reading, JSON responses, error rendering.

Kept framework-free on purpose: the token endpoints are the hot path (issue 3's benchmark), and
a plain ASGI callable avoids routing, ``Request`` objects and middleware stacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from taap.errors import BodyTooLargeError, TaapError

__all__ = [
    "NO_STORE",
    "ClientDisconnected",
    "Receive",
    "Scope",
    "Send",
    "error_response",
    "json_bytes",
    "read_body",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_INTERNAL = TaapError()
# RFC 6749 §5.2: error_description only in %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE_TEXT = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class ClientDisconnected(Exception):
    """The client went away before its body arrived; nothing is sent back."""


def json_bytes(value: Any) -> bytes:
    """Compact JSON (key order kept), ASCII-safe."""
    return json.dumps(value, separators=(",", ":")).encode("ascii")


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the request body, refusing as soon as it passes ``limit`` bytes.

    Raises:
        BodyTooLargeError: more than ``limit`` bytes arrived (nothing beyond is buffered).
        ClientDisconnected: the client closed the connection first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"request body is over the {limit}-byte cap")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    content_type: tuple[bytes, bytes] = JSON,
) -> None:
    """Send a complete response with ``Content-Length`` (JSON unless told otherwise)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                content_type,
                (b"content-length", str(len(body)).encode("ascii")),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_response(
    exc: TaapError | None, *, www_authenticate: bytes | None = None, allow: bytes | None = None
) -> tuple[int, bytes, Headers]:
    """Status, A6 JSON body and headers for ``exc`` (``None``: the generic 500)."""
    err = exc if exc is not None else _INTERNAL
    body = err.to_dict()
    body["error_description"] = _UNSAFE_TEXT.sub("?", body["error_description"])
    headers: Headers = list(NO_STORE)
    for name, value in err.wire_headers().items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    if err.status_code == 401 and www_authenticate is not None:
        headers.append((b"www-authenticate", www_authenticate))
    if err.status_code == 405 and allow is not None:
        headers.append((b"allow", allow))
    return err.status_code, json_bytes(body), headers
