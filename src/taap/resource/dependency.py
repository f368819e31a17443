"""Per-route guard for Starlette and FastAPI, and the handler that renders its errors.

FastAPI::

    guard = RequirePrincipal(validator, product="connectivity")
    app = FastAPI()
    app.add_exception_handler(TaapError, taap_error_handler)

    @app.get("/iot-connectivity/v1/devices/{iccid}")
    async def device(iccid: str, principal: Principal = Depends(guard)) -> dict: ...

Starlette: ``principal = await guard(request)`` inside the endpoint, with the same handler.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from taap.asgi import content_length, raw_path_of
from taap.core.request import canonical_uri, request_parts
from taap.errors import BodyTooLargeError, NotSubscribedError, TaapError
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal
from taap.resource.responses import error_response
from taap.resource.validator import Validator

__all__ = ["RequirePrincipal", "taap_error_handler"]


async def taap_error_handler(request: Request, exc: Exception) -> Response:
    """Render a :class:`~taap.errors.TaapError` as its error response (docs/protocol.md#errors)
    (exception handler)."""
    error = exc if isinstance(exc, TaapError) else TaapError()
    status, headers, body = error_response(error)
    return Response(
        body, status_code=status, headers={k: v for k, v in headers if k != "content-length"}
    )


class RequirePrincipal:
    """A dependency that verifies the request (unless the middleware already did) and returns
    its :class:`Principal`; ``product`` pins the route's product instead of the base-path map."""

    def __init__(self, validator: Validator, *, product: str | None = None) -> None:
        self.validator = validator
        self.product = product

    async def __call__(self, request: Request) -> Principal:
        """Verify ``request``.

        Raises:
            TaapError: the error of the first failing check (render it with
                :func:`taap_error_handler`).
        """
        existing = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(existing, Principal):
            if self.product is not None and self.product not in existing.apis:
                raise NotSubscribedError()
            return existing
        body = await self._body(request)
        raw_path = raw_path_of(request.scope)
        parts = request_parts(
            request.method,
            raw_path,
            request.scope.get("query_string", b""),
            request.scope.get("headers") or [],
            body,
        )
        principal = await self.validator.verify(
            parts, path=canonical_uri(raw_path), product=self.product
        )
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
        return principal

    async def _body(self, request: Request) -> bytes:
        limit = self.validator.settings.max_body
        declared = content_length(request.scope.get("headers") or ())
        if declared is not None and declared > limit:
            raise BodyTooLargeError()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError()
            chunks.append(chunk)
        body = b"".join(chunks)
        # Starlette serves request.body()/json() from this cache, so the endpoint sees the
        # very bytes that were verified.
        request._body = body
        return body
