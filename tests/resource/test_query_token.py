"""An access token in the query (RFC 6750 §2.3) is 400 ``request_malformed`` at every guard,
besides or instead of the Authorization header, before any check: nothing is recorded."""

from __future__ import annotations

import httpx
import pytest
from resource_kit import ISSUER, KID, NOW, Caller
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taap.core import MemoryReplayStore, PrivateKey, request_parts
from taap.errors import RequestMalformedError, TaapError
from taap.resource import GuardMiddleware, StaticKeys, Validator
from taap.resource.dependency import RequirePrincipal, taap_error_handler

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@pytest.fixture
def store() -> MemoryReplayStore:
    return MemoryReplayStore()


@pytest.fixture
def validator(server_key: PrivateKey, store: MemoryReplayStore) -> Validator:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    return Validator(keys, replay=store, clock=lambda: NOW)


@pytest.fixture
def api(validator: Validator) -> httpx.AsyncClient:
    async def device(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/iot-connectivity/v1/devices/{iccid}", device)],
        middleware=[Middleware(GuardMiddleware, validator=validator)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


async def test_token_in_query_besides_header_is_400_and_burns_nothing(
    api: httpx.AsyncClient, caller: Caller, store: MemoryReplayStore
) -> None:
    # The PoP signs the very uri sent (query included), so only the query rule can refuse it.
    target = f"{DEVICE}?access_token={caller.token}"
    response = await api.get(target, headers=caller.headers("GET", target, jti="query-jti"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_code"] == "request_malformed"
    assert caller.token not in response.text
    assert "www-authenticate" not in response.headers
    assert not store.contains("taap-client-a", "query-jti", now=NOW)
    assert len(store) == 0
    # The client is not penalised: a legitimate call right after goes through.
    legit = await api.get(DEVICE, headers=caller.headers("GET", DEVICE, jti="legit-jti"))
    assert legit.status_code == 200, legit.text
    assert store.contains("taap-client-a", "legit-jti", now=NOW)
    assert len(store) == 1


@pytest.mark.parametrize(
    "query",
    [
        "access_token=abc",
        "a=1&access_token=",
        "access_token",
        "access%5Ftoken=abc",
        "x=1&access_token=a&y=2",
    ],
)
async def test_token_in_query_instead_of_header_is_400(
    api: httpx.AsyncClient, caller: Caller, query: str
) -> None:
    headers = caller.headers("GET", f"{DEVICE}?{query}")
    del headers["Authorization"]
    response = await api.get(f"{DEVICE}?{query}", headers=headers)
    assert (response.status_code, response.json()["error_code"]) == (400, "request_malformed")


@pytest.mark.parametrize(
    "query", ["my_access_token=1", "access_tokens=1", "q=access_token", "Access_Token=1"]
)
async def test_other_names_are_not_refused(
    api: httpx.AsyncClient, caller: Caller, query: str
) -> None:
    target = f"{DEVICE}?{query}"
    response = await api.get(target, headers=caller.headers("GET", target))
    assert response.status_code == 200, response.text


async def test_validator_and_dependency_refuse_it_too(
    validator: Validator, caller: Caller, store: MemoryReplayStore
) -> None:
    target = f"{DEVICE}?access_token={caller.token}"
    headers = caller.headers("GET", target)
    parts = request_parts("GET", DEVICE, f"access_token={caller.token}", headers.items(), b"")
    with pytest.raises(RequestMalformedError):
        await validator.verify(parts)
    guard = RequirePrincipal(validator, product="connectivity")

    async def device(request: Request) -> Response:
        await guard(request)
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/iot-connectivity/v1/devices/{iccid}", device)],
        exception_handlers={TaapError: taap_error_handler},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        response = await http.get(target, headers=headers)
    assert (response.status_code, response.json()["error_code"]) == (400, "request_malformed")
    assert len(store) == 0
