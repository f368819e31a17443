"""What the revocation, introspection and feed endpoints share: the body that names a token
(RFC 7009 §2.1, RFC 7662 §2.1), and one way to answer, count and log a request.

The body is ``application/x-www-form-urlencoded`` as both RFCs require, ``token=…`` with an
optional ``token_type_hint``, or the TAAP JSON form ``{"token": …}``. Parameters other than
these two are ignored (RFC 6749 §3.2), a parameter given twice is refused. The hint is checked
for its type and otherwise ignored, as RFC 7009 allows: the token says what it is.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from time import perf_counter
from urllib.parse import parse_qsl

from taap.asgi import (
    ClientDisconnected,
    Receive,
    RequestHead,
    Response,
    Scope,
    Send,
    render_error,
    send_response,
)
from taap.core.strict_json import JsonError, loads_strict
from taap.core.tokens import MAX_TOKEN_BYTES
from taap.errors import BodyInvalidError, TaapError
from taap.server.audit import AuditLog
from taap.server.metrics import ServerMetrics
from taap.server.tokens.endpoint import Attempt, media_type

__all__ = [
    "BASIC_CHALLENGE",
    "FORM",
    "MAX_BODY",
    "TOKEN_MEDIA_TYPES",
    "TOKEN_REFUSAL",
    "Endpoint",
    "parse_token_body",
]

log = logging.getLogger("taap.server")

FORM = b"application/x-www-form-urlencoded"
TOKEN_MEDIA_TYPES = frozenset({FORM, b"application/json"})
TOKEN_REFUSAL = "Content-Type must be application/x-www-form-urlencoded or application/json"
#: a token of at most MAX_TOKEN_BYTES, form-encoded, and the hint fit with room to spare;
#: anything longer is refused (413) before it is parsed
MAX_BODY = 4 * MAX_TOKEN_BYTES
BASIC_CHALLENGE = b'Basic realm="taap"'
_HINT = "token_type_hint"


def _form_fields(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            errors="strict",
            max_num_fields=32,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyInvalidError("body is not a valid form", log_detail=str(exc)[:100]) from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields and name in ("token", _HINT):
            raise BodyInvalidError(f"'{name}' must appear once")
        fields[name] = value
    return fields


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        obj = loads_strict(body, max_depth=8)
    except JsonError as exc:
        raise BodyInvalidError("body must be a JSON object", log_detail=str(exc)) from exc
    fields: dict[str, str] = {}
    for name in ("token", _HINT):
        if name in obj:
            value = obj[name]
            if not isinstance(value, str):
                raise BodyInvalidError(f"'{name}' must be a string")
            fields[name] = value
    return fields


def parse_token_body(body: bytes, content_type: str) -> str:
    """The ``token`` of a revocation or introspection body.

    Raises:
        BodyInvalidError: unreadable body, ``token`` missing, empty, repeated or longer than a
            token of this server can be.
    """
    is_form = media_type(content_type.encode("latin-1")) == FORM
    fields = _form_fields(body) if is_form else _json_fields(body)
    token = fields.get("token")
    if not token:
        raise BodyInvalidError("'token' is required")
    if len(token) > MAX_TOKEN_BYTES:
        raise BodyInvalidError(f"'token' is longer than {MAX_TOKEN_BYTES} characters")
    if len(fields.get(_HINT, "")) > 64:
        raise BodyInvalidError("'token_type_hint' is too long")
    return token


class Endpoint(ABC):
    """One endpoint's ASGI side: :meth:`handle` answers or raises; errors become the error body,
    rejections get :meth:`rejected` (an audit line), every request is timed under ``label``."""

    label: str
    allow: bytes = b"POST"
    challenge: bytes | None = BASIC_CHALLENGE

    def __init__(self, metrics: ServerMetrics, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock

    @abstractmethod
    async def handle(
        self, scope: Scope, receive: Receive, head: RequestHead, attempt: Attempt, now: float
    ) -> Response: ...

    @abstractmethod
    def rejected(self, exc: TaapError | None, attempt: Attempt, now: float) -> None:
        """Called with each refusal (``None``: an unexpected error): the audit line."""

    def audit_rejection(
        self,
        audit: AuditLog,
        event: str,
        exc: TaapError | None,
        attempt: Attempt,
        now: float,
        *,
        jti: str | None = None,
    ) -> None:
        """The audit line of a refusal; a sink that fails is counted and logged, not raised
        (the caller is being answered with the refusal already)."""
        try:
            audit.record(
                now=now,
                event=event,
                endpoint=self.label,
                status=exc.status_code if exc is not None else 500,
                error_code=exc.error_code if exc is not None else "internal",
                client_id=attempt.client_id,
                source=attempt.source,
                request_id=attempt.request_id,
                jti=jti,
            )
        except Exception:
            self.metrics.audit_errors.inc()
            log.exception("audit line lost for a %s", event.replace("_", " "))

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, head: RequestHead, request_id: str
    ) -> None:
        started = perf_counter()
        now = self.clock()
        client = scope.get("client")
        attempt = Attempt(
            endpoint=self.label, source=client[0] if client else "unknown", request_id=request_id
        )
        try:
            status, headers, body = await self.handle(scope, receive, head, attempt, now)
        except ClientDisconnected:
            return
        except TaapError as exc:
            status, headers, body = render_error(
                exc, www_authenticate=self.challenge, allow=self.allow
            )
            self.rejected(exc, attempt, now)
        except Exception:
            log.exception("unexpected error on %s", scope.get("path"))
            status, headers, body = render_error(None)
            self.rejected(None, attempt, now)
        headers = [*headers, (b"x-request-id", request_id.encode("ascii"))]
        await send_response(send, status, headers, body)
        self.metrics.observe(self.label, perf_counter() - started)
