"""RequirePrincipal (per-route guard) and taap_error_handler in a Starlette app, in-process."""

from __future__ import annotations

import httpx
import pytest
from resource_kit import ISSUER, KID, NOW, Caller, make_token
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taap.core import MemoryReplayStore, PrivateKey
from taap.errors import TaapError
from taap.resource import (
    WWW_AUTHENTICATE,
    GuardMiddleware,
    GuardSettings,
    ProductMap,
    StaticKeys,
    Validator,
)
from taap.resource.dependency import RequirePrincipal, taap_error_handler


def make_validator(server_key: PrivateKey, max_body: int = 1024) -> Validator:
    return Validator(
        StaticKeys({KID: server_key.public}, issuer=ISSUER),
        replay=MemoryReplayStore(),
        settings=GuardSettings(max_body=max_body),
        clock=lambda: NOW,
    )


def make_app(validator: Validator, *, with_middleware: bool = False) -> Starlette:
    guard = RequirePrincipal(validator, product="connectivity")

    async def orders(request: Request) -> Response:
        principal = await guard(request)
        body = await request.body()  # served from the bytes the guard verified
        return JSONResponse({"client_id": principal.client_id, "body": body.decode()})

    async def open_route(request: Request) -> Response:
        return JSONResponse({"open": True})

    middleware = [Middleware(GuardMiddleware, validator=validator)] if with_middleware else []
    return Starlette(
        routes=[Route("/orders/{n}", orders, methods=["POST"]), Route("/open", open_route)],
        middleware=middleware,
        exception_handlers={TaapError: taap_error_handler},
    )


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_route_guard_accepts_and_passes_body(server_key: PrivateKey, caller: Caller) -> None:
    body = b'{"qty": 2}'
    async with client_for(make_app(make_validator(server_key))) as http:
        response = await http.post(
            "/orders/1", content=body, headers=caller.headers("POST", "/orders/1", body)
        )
        assert response.json() == {"client_id": "taap-client-a", "body": '{"qty": 2}'}
        # unguarded routes stay open: the dependency protects only where it is used
        assert (await http.get("/open")).json() == {"open": True}


async def test_route_guard_refusal_is_a6(server_key: PrivateKey, caller: Caller) -> None:
    body = b'{"qty": 2}'
    headers = caller.headers("POST", "/orders/1", body)
    async with client_for(make_app(make_validator(server_key))) as http:
        response = await http.post("/orders/1", content=b'{"qty": 9}', headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "pop_edts_mismatch"
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE


async def test_route_guard_product_pin(server_key: PrivateKey, rsa_key: PrivateKey) -> None:
    caller = Caller(rsa_key, make_token(server_key, rsa_key, apis=("location",)))
    async with client_for(make_app(make_validator(server_key))) as http:
        response = await http.post("/orders/1", headers=caller.headers("POST", "/orders/1"))
    assert (response.status_code, response.json()["error_code"]) == (403, "not_subscribed")


async def test_route_guard_body_cap(server_key: PrivateKey, caller: Caller) -> None:
    body = b"x" * 2000
    async with client_for(make_app(make_validator(server_key, max_body=1000))) as http:
        response = await http.post(
            "/orders/1", content=body, headers=caller.headers("POST", "/orders/1", body)
        )
    assert (response.status_code, response.json()["error_code"]) == (413, "body_too_large")


async def test_route_guard_reuses_middleware_principal(
    server_key: PrivateKey, caller: Caller
) -> None:
    # Middleware plus dependency: verified once (a second verify would burn the jti twice).
    validator = make_validator(server_key)
    validator.products = ProductMap({"/orders": "connectivity"})
    body = b"{}"
    async with client_for(make_app(validator, with_middleware=True)) as http:
        response = await http.post(
            "/orders/7", content=body, headers=caller.headers("POST", "/orders/7", body)
        )
    assert response.status_code == 200, response.text
    assert len(validator.replay) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [404, 405])
async def test_error_handler_renders_any_taap_error(status: int) -> None:
    from taap.errors import MethodNotAllowedError, NotFoundError

    error = NotFoundError() if status == 404 else MethodNotAllowedError()
    response = await taap_error_handler(None, error)  # type: ignore[arg-type]
    assert response.status_code == status
    assert b'"error_code"' in response.body
