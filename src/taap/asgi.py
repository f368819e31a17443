"""The ASGI edge shared by every taap listener: the token server and the guard.

Plain ASGI on purpose: the token endpoints are the hot path, and a plain callable avoids
routing, ``Request`` objects and middleware stacks. What lives here is what each listener would
otherwise write again: the type aliases, one pass over the request head, the capped body read,
and the error answer. Responses are ``(status, headers, body)`` everywhere, the order in which
ASGI sends them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from taap.errors import BodyTooLargeError, RequestMalformedError, TaapError

__all__ = [
    "JSON",
    "NO_STORE",
    "ASGIApp",
    "ClientDisconnected",
    "Headers",
    "Message",
    "Receive",
    "RequestHead",
    "Response",
    "Scope",
    "Send",
    "content_length",
    "json_bytes",
    "raw_path_of",
    "read_body",
    "render_error",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
#: ``(status, headers, body)`` of a complete answer
Response = tuple[int, Headers, bytes]

JSON = (b"content-type", b"application/json")
NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_INTERNAL = TaapError()
# RFC 6749 §5.2: error_description only in %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE_TEXT = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class ClientDisconnected(Exception):
    """The client went away before its body arrived; nothing is sent back."""


@dataclass(slots=True)
class RequestHead:
    """What the listeners need from the request headers, gathered in one pass.

    ``size`` counts the bytes on the wire (``name: value`` CRLF), as every cap here counts them.
    """

    size: int = 0
    content_types: list[bytes] = field(default_factory=list)
    content_length: bytes | None = None
    forwarded_for: list[bytes] = field(default_factory=list)
    request_ids: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
        """Read ``headers`` (ASGI: lower-case names) once."""
        head = cls()
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 4
            if name == b"content-type":
                head.content_types.append(value)
            elif name == b"content-length":
                head.content_length = value
            elif name == b"x-forwarded-for":
                head.forwarded_for.append(value)
            elif name == b"x-request-id":
                head.request_ids.append(value)
        head.size = size
        return head

    def declared_length(self) -> int | None:
        """The declared ``Content-Length``, or None.

        Raises:
            RequestMalformedError: a value that is not a decimal number.
        """
        if self.content_length is None:
            return None
        text = self.content_length.decode("latin-1").strip()
        if not text.isdigit():
            raise RequestMalformedError("invalid Content-Length")
        return int(text)


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared ``Content-Length`` of ``headers`` (any name case), or None.

    Raises:
        RequestMalformedError: a value that is not a decimal number.
    """
    head = RequestHead()
    for name, value in headers:
        if name.lower() == b"content-length":
            head.content_length = value
            break
    return head.declared_length()


def raw_path_of(scope: Scope) -> bytes:
    """The request path as sent (still percent-encoded), without the query."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).partition(b"?")[0]
    # Servers that omit raw_path give only the decoded path; re-escape what must be escaped.
    path = str(scope["path"])
    return quote(path, safe="/:@!$&'()*+,;=-._~").encode("ascii")


async def read_body(receive: Receive, limit: int, *, declared: int | None = None) -> bytes:
    """Read the request body, refusing as soon as it passes ``limit`` bytes.

    ``declared`` (the ``Content-Length``) over ``limit`` is refused before anything is read.

    Raises:
        BodyTooLargeError: more than ``limit`` bytes declared or arrived (nothing beyond is
            buffered).
        ClientDisconnected: the client closed the connection first.
    """
    if declared is not None and declared > limit:
        raise BodyTooLargeError(f"request body is over the {limit}-byte cap")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(f"request body is over the {limit}-byte cap")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def json_bytes(value: Any) -> bytes:
    """Compact JSON (key order kept), ASCII-safe."""
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def render_error(
    exc: TaapError | None, *, www_authenticate: bytes | None = None, allow: bytes | None = None
) -> Response:
    """The error answer to ``exc`` (``None``: the generic 500): status, headers, JSON body.

    ``www_authenticate`` is added to a 401, ``allow`` to a 405.
    """
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
    return err.status_code, headers, json_bytes(body)


async def send_response(
    send: Send,
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
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
