"""The sample APIs of docs/guard.md, behind the guard: Connectivity and SMS Notification.

``create_sample_app(token_server_url)`` returns a Starlette app ready for uvicorn; ``taap
sample-api`` serves it and ``taap serve --with-sample-apis`` mounts it beside the token server.
Every route is guarded, except ``GET /healthz`` (a probe that reveals nothing), ``/metrics``
and the OpenAPI document (:mod:`taap.resource.sample_openapi`, which also holds the operations
the routes are built from).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taap.core.replay import ReplayStore
from taap.core.strict_json import JsonError, loads_strict
from taap.errors import (
    BodyInvalidError,
    ConfigurationError,
    ContentTypeError,
    MethodNotAllowedError,
    NotFoundError,
    RequestMalformedError,
    TaapError,
)
from taap.resource.audit import GuardAudit, UsageHook
from taap.resource.dependency import taap_error_handler
from taap.resource.keys import KeyProvider
from taap.resource.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from taap.resource.metrics import render as render_metrics
from taap.resource.middleware import GuardMiddleware
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal
from taap.resource.revocations import RevocationWatcher
from taap.resource.sample_openapi import (
    E164_PATTERN,
    ICCID_PATTERN,
    MAX_SMS_TEXT,
    OPENAPI_PATHS,
    SAMPLE_OPERATIONS,
    sample_openapi_document,
)
from taap.resource.settings import GuardSettings
from taap.resource.validator import Validator

__all__ = ["DEVICES", "HEALTH_PATH", "create_sample_app"]

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
_ICCID = re.compile(ICCID_PATTERN)
_E164 = re.compile(E164_PATTERN)

#: The nine devices of docs/protocol.md#the-sample-apis: ICCID → status, plan, last-seen.
DEVICES: dict[str, dict[str, str]] = {
    f"89012600000000000{n:02d}": {
        "iccid": f"89012600000000000{n:02d}",
        "status": status,
        "plan": plan,
        "last_seen": f"2026-11-{20 + n:02d}T{8 + n:02d}:15:00Z",
    }
    for n, status, plan in (
        (1, "active", "IoT Basic 1 GB"),
        (2, "active", "IoT Basic 1 GB"),
        (3, "active", "IoT Plus 5 GB"),
        (4, "suspended", "IoT Plus 5 GB"),
        (5, "active", "IoT Pro 20 GB"),
        (6, "inactive", "IoT Basic 1 GB"),
        (7, "active", "IoT Pro 20 GB"),
        (8, "active", "IoT Plus 5 GB"),
        (9, "suspended", "IoT Pro 20 GB"),
    )
}


def _principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    # The guard wraps every route; reaching here without a principal is a wiring bug.
    assert isinstance(principal, Principal)
    return principal


async def get_device(request: Request) -> Response:
    """``GET /iot-connectivity/v1/devices/{iccid}``."""
    _principal(request)
    iccid = request.path_params["iccid"]
    if not _ICCID.fullmatch(iccid):
        raise RequestMalformedError("an ICCID is 19-20 digits starting with 89")
    device = DEVICES.get(iccid)
    if device is None:
        raise NotFoundError("no such device")
    return JSONResponse(device)


def _sms_request(body: bytes) -> tuple[str, str]:
    try:
        data: dict[str, Any] = loads_strict(body)
    except JsonError as exc:
        raise BodyInvalidError("body must be a JSON object", log_detail=str(exc)) from exc
    if set(data) != {"to", "text"}:
        raise BodyInvalidError('body must have exactly the members "to" and "text"')
    to, text = data["to"], data["text"]
    if not isinstance(to, str) or not _E164.fullmatch(to):
        raise BodyInvalidError('"to" must be an E.164 number such as +14255550100')
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_SMS_TEXT:
        raise BodyInvalidError(f'"text" must be a string of 1..{MAX_SMS_TEXT} characters')
    return to, text


async def send_message(request: Request) -> Response:
    """``POST /sms/v1/messages``: queue a message (nothing is sent)."""
    _principal(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ContentTypeError()
    _sms_request(await request.body())
    return JSONResponse({"message_id": str(uuid.uuid4()), "status": "queued"}, status_code=201)


async def health(request: Request) -> Response:
    """``GET /healthz``: unauthenticated liveness."""
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    """``GET /openapi.json`` (and ``/sample-apis/openapi.json``): the sample APIs' document."""
    return JSONResponse(sample_openapi_document())


_HANDLERS = {"getDevice": get_device, "sendMessage": send_message}


async def metrics(request: Request) -> Response:
    """``GET /metrics``: the guard's Prometheus metrics (``taap_jwks_refreshes_total``)."""
    return Response(render_metrics(), media_type=METRICS_CONTENT_TYPE)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 become error bodies like every other error.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error: TaapError
    if status == 405:
        allow = (exc.headers or {}).get("Allow") if isinstance(exc, HTTPException) else None
        error = MethodNotAllowedError(headers={"Allow": allow} if allow else None)
    elif status == 404:
        error = NotFoundError()
    else:
        error = TaapError()
    return await taap_error_handler(request, error)


def create_sample_app(
    token_server_url: str | None = None,
    *,
    keys: KeyProvider | None = None,
    replay_store: ReplayStore | None = None,
    redis_url: str | None = None,
    settings: GuardSettings | None = None,
    validator: Validator | None = None,
    clock: Callable[[], float] = time.time,
    revocations: RevocationWatcher | None = None,
    usage: UsageHook | None = None,
) -> Starlette:
    """The sample APIs guarded by keys from ``token_server_url`` (discovery + JWKS).

    ``replay_store`` should be the token server's when both run in one process (one jti
    namespace, SECURITY.md R5); otherwise ``redis_url`` (or ``settings.redis_url``) selects the
    Redis store under the token server's default prefix, and without either the in-process one
    serves. ``keys`` or ``validator`` replace the discovered keys. ``revocations`` replaces the
    watcher over the token server's revocation feed (the token server's own process passes
    one over its registry); with ``keys`` and without it, revocations are not checked.
    ``usage`` is told of every decision of the guard (see :class:`GuardAudit`).

    Raises:
        ConfigurationError: no token server URL, keys or validator; or a URL that is neither
            https nor loopback http.
    """
    settings = settings or GuardSettings()
    if validator is None:
        if redis_url and replay_store is None:
            settings = replace(settings, redis_url=redis_url)
        if keys is not None:
            validator = Validator(
                keys,
                replay=replay_store,
                settings=settings,
                clock=clock,
                revocations=revocations,
            )
        elif token_server_url:
            validator = Validator.for_token_server(
                token_server_url,
                replay=replay_store,
                settings=settings,
                clock=clock,
                revocations=revocations,
            )
        else:
            raise ConfigurationError("the sample APIs need the token server's URL")
    routes = [
        Route(op.path, _HANDLERS[op.operation_id], methods=[op.method]) for op in SAMPLE_OPERATIONS
    ]
    routes += [Route(path, openapi, methods=["GET"]) for path in OPENAPI_PATHS]
    routes += [
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(METRICS_PATH, metrics, methods=["GET"]),
    ]
    exempt = [HEALTH_PATH, METRICS_PATH, *OPENAPI_PATHS]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                GuardMiddleware,
                validator=validator,
                exempt=exempt,
                audit=GuardAudit(usage=usage),
            )
        ],
        exception_handlers={TaapError: taap_error_handler, HTTPException: _http_error},
    )
