"""A path the application behind the guard does not serve is 404 ``not_found`` before any
authentication (nothing verified, no PoP burned); a near miss under ``/oauth2/`` names the token
endpoints. How the guard learns the served paths: the router's routes when nothing else stands
between the guard and the router, else the product base paths."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from resource_kit import ISSUER, KID, NOW, Caller
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route, Router

from taap.core import MemoryReplayStore, PrivateKey
from taap.core.request import canonical_uri
from taap.resource import GuardMiddleware, StaticKeys, Validator
from taap.resource.routes import TOKEN_ENDPOINTS, ServedPaths, find_router, plain_path
from taap.resource.sample import create_sample_app

SMS = "/sms/v1/messages"


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True}, status_code=201)


def validator(server_key: PrivateKey, store: MemoryReplayStore | None = None) -> Validator:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    return Validator(keys, replay=store or MemoryReplayStore(), clock=lambda: NOW)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


class Tagging:
    """A middleware the guard cannot see through (it could answer paths of its own)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def store() -> MemoryReplayStore:
    return MemoryReplayStore()


@pytest.fixture
def sample(server_key: PrivateKey, store: MemoryReplayStore) -> httpx.AsyncClient:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    return client(create_sample_app(keys=keys, replay_store=store, clock=lambda: NOW))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/oauth2/v2/token"),
        ("POST", "/oauth2/v6/tokenz"),
        ("POST", "/oauth2/tokens"),
        ("GET", "/OAuth2/v2/tokens"),
        ("POST", "/oauth2"),
    ],
)
async def test_near_miss_under_oauth2_is_404_naming_the_token_endpoints(
    sample: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await sample.request(method, path)
    assert response.status_code == 404
    body = response.json()
    assert (body["error"], body["error_code"]) == ("invalid_request", "not_found")
    for endpoint in TOKEN_ENDPOINTS:
        assert endpoint in body["error_description"]
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("path", ["/no/such/path", "/", "/oauth2x/v2/tokens", "/location/v1/x"])
async def test_unknown_path_is_404_without_hint(sample: httpx.AsyncClient, path: str) -> None:
    # /location/v1 is a product the guard maps, but no route of the sample APIs serves it.
    response = await sample.get(path)
    assert (response.status_code, response.json()["error_code"]) == (404, "not_found")
    assert response.json()["error_description"] == "not found"


async def test_unknown_path_is_404_before_authentication(
    sample: httpx.AsyncClient, store: MemoryReplayStore, caller: Caller
) -> None:
    # A correctly signed call, under a product the token grants, to a path no route serves:
    # refused before the token and the PoP are looked at, so its jti is not burned; a forged
    # token gets the same 404.
    target = "/iot-connectivity/v1/sims/8901260000000000001"
    headers = caller.headers("GET", target, jti="unserved-jti")
    response = await sample.get(target, headers=headers)
    assert (response.status_code, response.json()["error_code"]) == (404, "not_found")
    assert len(store) == 0
    forged = await sample.get(target, headers={**headers, "Authorization": "Bearer x.y.z"})
    assert forged.status_code == 404
    served = "/iot-connectivity/v1/devices/8901260000000000001"
    assert (await sample.get(served, headers=caller.headers("GET", served))).status_code == 200


async def test_served_paths_are_still_guarded(sample: httpx.AsyncClient) -> None:
    # A route with another method (the app answers 405 after the guard), a slash variant the
    # router would redirect, and a path parameter the route accepts: served, so 401.
    for method, path in [
        ("GET", SMS),
        ("POST", SMS + "/"),
        ("GET", "/iot-connectivity/v1/devices/anything"),
    ]:
        response = await sample.request(method, path)
        assert (response.status_code, response.json()["error_code"]) == (401, "token_invalid")


async def test_refusal_is_audited(
    sample: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="taap.audit"):
        await sample.post("/oauth2/v2/token")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "taap.audit"]
    assert [(x["event"], x["status"], x["error_code"]) for x in lines] == [
        ("api_call_refused", 404, "not_found")
    ]


def starlette_routes() -> list[Any]:
    return [Route(SMS, ok, methods=["POST"]), Mount("/files", routes=[Route("/{name}", ok)])]


@pytest.mark.parametrize(
    "shape",
    ["guard last in middleware", "guard around app", "guard around router", "fastapi"],
)
async def test_routes_are_known_when_nothing_stands_between(
    server_key: PrivateKey, shape: str
) -> None:
    guard = {"validator": validator(server_key)}
    app: Any
    if shape == "guard last in middleware":
        app = Starlette(
            routes=starlette_routes(), middleware=[Middleware(GuardMiddleware, **guard)]
        )
    elif shape == "guard around app":
        app = GuardMiddleware(Starlette(routes=starlette_routes()), **guard)
    elif shape == "guard around router":
        app = GuardMiddleware(Router(routes=starlette_routes()), **guard)
    else:
        fast = FastAPI(openapi_url=None)
        fast.add_middleware(GuardMiddleware, **guard)

        @fast.post(SMS)  # a route added after the middleware still counts
        async def send() -> dict[str, bool]:
            return {"ok": True}

        app = fast
    async with client(app) as http:
        assert (await http.post(SMS)).status_code == 401
        assert (await http.post("/sms/v1/nothing")).status_code == 404  # under a product
        assert (await http.get("/no/such/path")).status_code == 404
        if shape != "fastapi":
            assert (await http.get("/files/a.txt")).status_code == 401  # inside a Mount


@pytest.mark.parametrize("shape", ["layer after guard", "app with middleware", "custom default"])
async def test_product_base_paths_decide_when_routes_are_not_knowable(
    server_key: PrivateKey, shape: str
) -> None:
    guard = {"validator": validator(server_key)}
    app: Any
    if shape == "layer after guard":
        middleware = [Middleware(GuardMiddleware, **guard), Middleware(Tagging)]
        app = Starlette(routes=starlette_routes(), middleware=middleware)
    elif shape == "app with middleware":
        inner = Starlette(routes=starlette_routes(), middleware=[Middleware(Tagging)])
        app = GuardMiddleware(inner, **guard)
    else:
        app = GuardMiddleware(Router(routes=starlette_routes(), default=ok), **guard)
    async with client(app) as http:
        # /sms/v1 is a product's base path: the layer might serve more there, so it is guarded.
        assert (await http.post("/sms/v1/nothing")).status_code == 401
        # Outside every product nothing could ever be accepted: 404 at once.
        response = await http.get("/no/such/path")
        assert (response.status_code, response.json()["error_code"]) == (404, "not_found")


async def test_plain_asgi_app_uses_product_base_paths(server_key: PrivateKey) -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never reached without a principal")

    guard = GuardMiddleware(inner, validator=validator(server_key))
    assert not guard.served.knows_routes
    async with client(guard) as http:
        assert (await http.get("/iot-connectivity/v1/anything")).status_code == 401
        assert (
            (await http.post("/oauth2/v2/token"))
            .json()["error_description"]
            .startswith("not found; the token endpoints are POST /oauth2/v2/tokens")
        )


def test_find_router_sees_only_known_layers() -> None:
    router = Router(routes=starlette_routes())
    assert find_router(router) is router
    assert find_router(Starlette(routes=starlette_routes())) is not None
    assert find_router(Tagging(router)) is None
    assert find_router(object()) is None  # type: ignore[arg-type]


def test_served_paths_without_known_routes_follow_products(server_key: PrivateKey) -> None:
    served = ServedPaths(Tagging(None), validator(server_key).products)
    scope = {"type": "http", "method": "GET", "path": "/sms/v1"}
    assert served.serves(scope, "/sms/v1")
    assert not served.serves(scope, "/sms/v1x")


# Paths built from the characters that matter to the rule, plus arbitrary bytes.
PATHS = st.text(alphabet="/.%?#aZ09-_~+ é2fF\x00", max_size=24).map(
    lambda text: ("/" + text).encode()
) | st.binary(max_size=24)


@settings(derandomize=True, max_examples=600)
@given(PATHS)
def test_fast_path_decoding_agrees_with_canonical_uri(raw: bytes) -> None:
    # The guard skips canonical_uri for paths that decode to themselves; it must never
    # disagree with it (same text, and never accepting what canonical_uri refuses).
    fast = plain_path(raw)
    if fast is None:
        return
    assert canonical_uri(raw) == fast


@pytest.mark.parametrize(
    "raw", [b"/a/./b", b"/a/..", b"/.well-known/x", b"/a%20b", b"/a b", "/é".encode(), b"x"]
)
def test_fast_path_leaves_the_rest_to_canonical_uri(raw: bytes) -> None:
    assert plain_path(raw) is None


@pytest.mark.parametrize("root_path", ["", "/api"])
def test_quick_route_matching_agrees_with_starlette(server_key: PrivateKey, root_path: str) -> None:
    # Route and Mount are matched by their path regex alone; the answer must be Starlette's.
    routes = [
        Route("/items/{n:int}", ok, methods=["POST"]),
        Route("/files/{name:path}", ok),
        Mount("/m", routes=[Route("/{x}", ok)]),
        Route("/exact", ok),
    ]
    router = Router(routes=routes, redirect_slashes=False)
    served = ServedPaths(router, validator(server_key).products)
    assert served.knows_routes
    for path in [
        "/items/1",
        "/items/x",
        "/items/1/",
        "/files/a/b.txt",
        "/files/",
        "/m/y",
        "/m",
        "/exact",
        "/exactly",
        "/",
        "/nothing",
    ]:
        for method in ("GET", "POST"):
            scope = {
                "type": "http",
                "method": method,
                "path": root_path + path,
                "root_path": root_path,
                "headers": [],
            }
            expected = any(route.matches(scope)[0] is not Match.NONE for route in routes)
            assert served.serves(scope, path) is expected, (root_path, method, path)
