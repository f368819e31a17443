"""``GET /auth``: the verdict for nginx's ``auth_request`` (docs/gateway.md, "auth_request mode").

nginx asks, for each call it is about to pass on, with the call's headers and two of its own:
``X-Original-Method`` and ``X-Original-URI`` (the request target as the caller sent it). The
call is rebuilt from them, with an empty body, and judged by the same
:class:`~taap.resource.GuardMiddleware` as a forwarded call. nginx never passes the body to the
subrequest, so a call that declares one (``Content-Length`` above 0 or ``Transfer-Encoding``,
on the subrequest or in ``X-Original-Content-Length`` / ``X-Original-Transfer-Encoding``) is
refused 413 ``body_too_large``: its PoP could leave the body unsigned and nobody would check it.

The answer: 200 with ``X-Taap-Client-Id`` and ``X-Taap-Product`` when accepted; otherwise the
error status and body (docs/protocol.md#errors), with the body also in ``X-Taap-Error`` and
the status in ``X-Taap-Status``
(nginx drops the subrequest's body and turns any status but 401 and 403 into its own 500, so
its configuration rebuilds the answer from these two).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from taap.asgi import Message, Receive, Scope, Send, send_response
from taap.errors import BodyTooLargeError, RequestMalformedError, TaapError
from taap.resource.middleware import GuardMiddleware, send_error
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal

__all__ = ["AUTH_PATH", "AuthRequest", "original_scope"]

AUTH_PATH = "/auth"
_METHOD = re.compile(rb"[A-Z]{1,16}")
_ORIGINAL = (b"x-original-method", b"x-original-uri")


async def _accepted(scope: Scope, receive: Receive, send: Send) -> None:
    principal = scope[PRINCIPAL_SCOPE_KEY]
    assert isinstance(principal, Principal)
    headers = [
        (b"x-taap-client-id", principal.client_id.encode("latin-1")),
        (b"x-taap-product", principal.product.encode("latin-1")),
        (b"cache-control", b"no-store"),
    ]
    await send_response(send, 200, headers, b"")


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name in (b"content-length", b"x-original-content-length"):
            text = value.strip()
            if text and text != b"0":
                return True
        elif name in (b"transfer-encoding", b"x-original-transfer-encoding") and value.strip():
            return True
    return False


def original_scope(scope: Scope) -> Scope:
    """The call nginx describes, as the scope of a request without a body.

    Raises:
        RequestMalformedError: the two headers are missing, repeated or malformed.
        BodyTooLargeError: the call declares a body.
    """
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
    found: dict[bytes, list[bytes]] = {name: [] for name in _ORIGINAL}
    for name, value in headers:
        if name in found:
            found[name].append(value)
    method, uri = (found[name] for name in _ORIGINAL)
    if len(method) != 1 or len(uri) != 1 or not _METHOD.fullmatch(method[0]):
        raise RequestMalformedError(
            "the auth_request endpoint needs one X-Original-Method and one X-Original-URI"
        )
    if not uri[0].startswith(b"/"):
        raise RequestMalformedError("X-Original-URI must be a path with an optional query")
    if _declares_body(headers):
        raise BodyTooLargeError(
            "this API is checked by nginx auth_request, which cannot see a request body: "
            "calls with a body must go through taap gateway itself"
        )
    raw_path, _, query = uri[0].partition(b"?")
    kept = [(n, v) for n, v in headers if n not in _ORIGINAL and n != b"content-length"]
    return {
        **scope,
        "method": method[0].decode("ascii"),
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": kept,
    }


async def _no_body() -> Message:
    message: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}
    return message


class AuthRequest:
    """The ``GET /auth`` endpoint, judging with ``guard`` (whose app is never the upstream)."""

    def __init__(self, guard_for: Any) -> None:
        #: builds the guard around an inner app (the gateway's, with every product)
        self.guard: GuardMiddleware = guard_for(_accepted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        try:
            original = original_scope(scope)
        except TaapError as exc:
            await send_error(keep, exc)
        else:
            await self.guard(original, _no_body, keep)
        await _relay(answer, send)


async def _relay(answer: list[Message], send: Send) -> None:
    if not answer or answer[0]["type"] != "http.response.start":
        return  # nothing was said (cannot happen without a disconnect)
    start = answer[0]
    status = int(start["status"])
    body = b"".join(m.get("body", b"") for m in answer[1:])
    headers = list(start["headers"])
    if status >= 300:
        headers += [(b"x-taap-status", str(status).encode("ascii")), (b"x-taap-error", body)]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
