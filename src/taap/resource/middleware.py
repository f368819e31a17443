"""Pure ASGI guard: buffer the body once, verify, hand the request on (docs/architecture.md).

The middleware only adapts ASGI. It caps the headers (431), answers 404 for a path the
application does not serve, caps the body (413, refused from ``Content-Length`` before reading
or as soon as the bytes read pass the cap), reduces the request to
:class:`~taap.core.request.RequestParts` exactly as it arrived, and asks the
:class:`~taap.resource.validator.Validator`. On success the application gets the same body bytes
through a replayed ``receive`` and the :class:`~taap.resource.principal.Principal` in
``scope["taap.principal"]``, and the audit line carries the status the application answered;
on failure the caller gets the JSON error body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from taap.asgi import (
    ASGIApp,
    ClientDisconnected,
    Message,
    Receive,
    RequestHead,
    Scope,
    Send,
    raw_path_of,
    read_body,
    render_error,
    send_response,
)
from taap.core.request import canonical_uri, request_parts
from taap.errors import HeadersTooLargeError, TaapError
from taap.resource.audit import GuardAudit
from taap.resource.metrics import guard_request
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal
from taap.resource.responses import WWW_AUTHENTICATE
from taap.resource.routes import ServedPaths, not_found, plain_path
from taap.resource.validator import Validator

__all__ = ["GuardMiddleware", "send_error"]

log = logging.getLogger("taap.resource")


_CHALLENGE = WWW_AUTHENTICATE.encode("latin-1")


async def send_error(send: Send, exc: TaapError) -> None:
    """Send the error answer to ``exc``."""
    status, headers, body = render_error(exc, www_authenticate=_CHALLENGE)
    await send_response(send, status, headers, body)


class GuardMiddleware:
    """ASGI middleware that lets only verified TAAP step-4 requests through.

    ``exempt`` lists path prefixes served without a check (health probes, docs); ``audit``
    writes one line per request on the ``taap.audit`` logger. A path the application does not
    serve is answered 404 before any check (:mod:`taap.resource.routes` says how the guard
    knows); every verdict is counted in :mod:`taap.resource.metrics`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        validator: Validator,
        exempt: Iterable[str] = (),
        audit: GuardAudit | None = None,
    ) -> None:
        self.app = app
        self.validator = validator
        self.exempt = tuple(exempt)
        self.audit = audit or GuardAudit()
        self.served = ServedPaths(app, validator.products)

    def _is_exempt(self, scope: Scope) -> bool:
        if not self.exempt:
            return False
        path = str(scope.get("path", ""))
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exempt):
            return False
        # "/healthz/../orders" or "/healthz%2F..%2Forders" must not ride on an exemption into
        # an app or proxy that normalises paths later: such paths go through the guard.
        raw = raw_path_of(scope).lower()
        return b"%2f" not in raw and b"%2e" not in raw and b"/." not in raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._is_exempt(scope):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            # TAAP signs HTTP requests; a websocket upgrade cannot carry a body PoP. Refuse.
            await send({"type": "websocket.close", "code": 1008})
            return
        started = perf_counter()
        try:
            principal, body = await self._judge(scope, receive)
        except ClientDisconnected:
            return
        except TaapError as exc:
            await self._refuse(scope, send, exc, started)
            return
        except Exception:
            # A bug, not the caller's fault: answer a bare 500, keep the details in the log.
            log.exception("guard failed unexpectedly")
            error = TaapError(log_detail="unexpected exception (see the taap.resource log)")
            await self._refuse(scope, send, error, started)
            return
        guard_request(None, perf_counter() - started)
        await self._pass(scope, principal, body, receive, send)

    async def _judge(self, scope: Scope, receive: Receive) -> tuple[Principal, bytes]:
        headers = scope.get("headers") or []
        settings = self.validator.settings
        head = RequestHead.of(headers)
        if head.size > settings.max_headers:
            raise HeadersTooLargeError()
        raw_path = raw_path_of(scope)
        # The decoded path, or 400 when it is ambiguous: which path it is must be settled
        # before asking whether the application serves it.
        path = plain_path(raw_path) or canonical_uri(raw_path)
        if not self.served.serves(scope, path):
            raise not_found(path)
        body = await read_body(receive, settings.max_body, declared=head.declared_length())
        parts = request_parts(
            scope["method"], raw_path, scope.get("query_string", b""), headers, body
        )
        return await self.validator.verify(parts, path=path), body

    async def _refuse(self, scope: Scope, send: Send, error: TaapError, started: float) -> None:
        guard_request(error.error_code, perf_counter() - started)
        self.audit.refused(
            now=self.validator.clock(),
            method=str(scope.get("method")),
            path=str(scope.get("path")),
            error=error,
            source=_source(scope),
        )
        await send_error(send, error)

    async def _pass(
        self, scope: Scope, principal: Principal, body: bytes, receive: Receive, send: Send
    ) -> None:
        status: int | None = None

        def audit(answered: int | None) -> None:
            self.audit.accepted(
                now=self.validator.clock(),
                method=str(scope.get("method")),
                path=str(scope.get("path")),
                principal=principal,
                source=_source(scope),
                status=answered,
            )

        async def send_watched(message: Message) -> None:
            nonlocal status
            if status is None and message["type"] == "http.response.start":
                status = int(message["status"])
                audit(status)
            await send(message)

        try:
            await self.app(
                {**scope, PRINCIPAL_SCOPE_KEY: principal}, _replay(body, receive), send_watched
            )
        except Exception:
            if status is None:
                # The app raised before answering: the server (or an outer middleware) sends 500.
                audit(500)
            raise
        except BaseException:
            if status is None:
                audit(None)  # cancelled: the caller went away before any answer
            raise
        if status is None:
            audit(None)  # no response at all: the caller went away


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        # After the body, the application only waits for a disconnect: ask the server.
        return await receive()

    return replayed
