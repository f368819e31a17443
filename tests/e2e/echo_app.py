"""A user's own API behind the guard, as docs/guard.md shows it: echoes what the app received.

``uvicorn echo_app:create --factory`` with ``TAAP_TOKEN_SERVER`` set; every route belongs to the
product ``connectivity`` through the base path ``/echo``.
"""

from __future__ import annotations

import base64
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from taap.resource import GuardMiddleware, GuardSettings, JwksKeys, Principal, Validator


async def echo(request: Request) -> JSONResponse:
    principal: Principal = request.scope["taap.principal"]
    body = await request.body()
    return JSONResponse(
        {
            "client_id": principal.client_id,
            "pop_jti": principal.pop_jti,
            "body_b64": base64.b64encode(body).decode(),
        }
    )


def create() -> Starlette:
    settings = GuardSettings.from_env()
    keys = JwksKeys(
        os.environ["TAAP_TOKEN_SERVER"],
        ttl=settings.jwks_ttl,
        min_refresh=settings.jwks_min_refresh,
    )
    validator = Validator(keys, products={"/echo": "connectivity"}, settings=settings)
    return Starlette(
        routes=[Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT"])],
        middleware=[Middleware(GuardMiddleware, validator=validator)],
    )
