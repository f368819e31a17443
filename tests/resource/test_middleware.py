"""GuardMiddleware in-process: a tiny Starlette app, httpx.ASGITransport, static keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from resource_kit import ISSUER, KID, NOW, Caller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taap.core import MemoryReplayStore, PrivateKey
from taap.resource import (
    PRINCIPAL_SCOPE_KEY,
    WWW_AUTHENTICATE,
    GuardMiddleware,
    GuardSettings,
    Principal,
    StaticKeys,
    Validator,
)

SMS = "/sms/v1/messages"
seen: list[dict[str, Any]] = []


async def echo(request: Request) -> Response:
    principal = request.scope[PRINCIPAL_SCOPE_KEY]
    assert isinstance(principal, Principal)
    body = await request.body()
    seen.append({"body": body, "principal": principal})
    return JSONResponse(
        {"client_id": principal.client_id, "jti": principal.pop_jti, "len": len(body)}
    )


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, "principal": PRINCIPAL_SCOPE_KEY in request.scope})


def build_app(server_key: PrivateKey, *, max_body: int = 1024 * 1024) -> Any:
    inner = Starlette(
        routes=[
            Route(SMS, echo, methods=["POST"]),
            Route("/iot-connectivity/v1/devices/{iccid}", echo, methods=["GET"]),
            Route("/healthz", health),
        ]
    )
    validator = Validator(
        StaticKeys({KID: server_key.public}, issuer=ISSUER),
        replay=MemoryReplayStore(),
        settings=GuardSettings(max_body=max_body),
        clock=lambda: NOW,
    )
    return GuardMiddleware(inner, validator=validator, exempt=["/healthz"])


@pytest.fixture
def client(server_key: PrivateKey) -> httpx.AsyncClient:
    seen.clear()
    transport = httpx.ASGITransport(app=build_app(server_key))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_body_reaches_app_unchanged(client: httpx.AsyncClient, caller: Caller) -> None:
    # Odd spacing, unicode and key order: the app must see these exact bytes.
    body = '{ "text":"héllo  €",\n"to" : "+14255550100" }'.encode()
    response = await client.post(SMS, content=body, headers=caller.headers("POST", SMS, body))
    assert response.status_code == 200, response.text
    assert seen[0]["body"] == body
    assert response.json()["client_id"] == "taap-client-a"
    assert seen[0]["principal"].product == "sms-notification"


async def test_missing_token_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/iot-connectivity/v1/devices/8901260000000000001")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "Bearer access token is missing",
        "error_code": "token_invalid",
    }
    assert seen == []


async def test_replay_answers_pop_replayed(client: httpx.AsyncClient, caller: Caller) -> None:
    target = "/iot-connectivity/v1/devices/8901260000000000001"
    headers = caller.headers("GET", target)
    assert (await client.get(target, headers=headers)).status_code == 200
    again = await client.get(target, headers=headers)
    assert again.status_code == 401
    assert again.json()["error_code"] == "pop_replayed"
    assert again.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert len(seen) == 1


async def test_query_is_signed(client: httpx.AsyncClient, caller: Caller) -> None:
    target = "/iot-connectivity/v1/devices/8901260000000000001"
    headers = caller.headers("GET", target + "?fields=status")
    assert (await client.get(target + "?fields=status", headers=headers)).status_code == 200
    headers = caller.headers("GET", target + "?fields=status")
    response = await client.get(target + "?fields=plan", headers=headers)
    assert response.json()["error_code"] == "pop_edts_mismatch"


async def test_percent_encoded_path_matches_decoded_signature(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    target = "/iot-connectivity/v1/devices/a%20b?q=x%20y"
    response = await client.get(target, headers=caller.headers("GET", target))
    assert response.status_code == 200, response.text


async def test_ambiguous_query_is_400(client: httpx.AsyncClient, caller: Caller) -> None:
    target = "/iot-connectivity/v1/devices/x?a=1%26b=2"
    response = await client.get(target, headers=caller.headers("GET", target))
    assert response.status_code == 400
    assert response.json()["error_code"] == "request_malformed"
    assert "www-authenticate" not in response.headers


async def test_not_subscribed_is_403(server_key: PrivateKey, rsa_key: PrivateKey) -> None:
    from resource_kit import make_token

    app = build_app(server_key)
    caller = Caller(rsa_key, make_token(server_key, rsa_key, apis=("connectivity",)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = b'{"to":"+14255550100","text":"x"}'
        response = await c.post(SMS, content=body, headers=caller.headers("POST", SMS, body))
    assert response.status_code == 403
    assert response.json()["error_code"] == "not_subscribed"


async def test_body_over_cap_declared_is_413(server_key: PrivateKey, caller: Caller) -> None:
    app = build_app(server_key, max_body=16)
    body = b'{"to":"+14255550100","text":"too long for the cap"}'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(SMS, content=body, headers=caller.headers("POST", SMS, body))
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"


async def test_body_over_cap_streamed_is_refused_while_reading(server_key: PrivateKey) -> None:
    # No Content-Length: the guard must stop reading once the cap is passed.
    app = build_app(server_key, max_body=100)
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 40, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": SMS,
        "raw_path": SMS.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled == 3  # 40, 80, 120 > 100: refused on the third chunk, never a fourth


async def test_headers_over_cap_is_431(server_key: PrivateKey, caller: Caller) -> None:
    app = build_app(server_key)
    headers = caller.headers("GET", "/iot-connectivity/v1/devices/1")
    headers["X-Padding"] = "p" * 20000
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/iot-connectivity/v1/devices/1", headers=headers)
    assert response.status_code == 431
    assert response.json()["error_code"] == "headers_too_large"


async def test_exempt_path_passes_without_principal(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"ok": True, "principal": False}


async def test_lifespan_passes_through(server_key: PrivateKey) -> None:
    events: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        events.append(scope["type"])

    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER))
    await GuardMiddleware(inner, validator=validator)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert events == ["lifespan"]


async def test_websocket_is_refused(server_key: PrivateKey) -> None:
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("must not be reached")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER))
    guard = GuardMiddleware(inner, validator=validator)
    await guard({"type": "websocket", "path": "/sms/v1/x"}, None, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_unexpected_failure_is_bare_500(server_key: PrivateKey, caller: Caller) -> None:
    class Broken(StaticKeys):
        async def current(self) -> Any:
            raise RuntimeError("secret internals")

    validator = Validator(Broken({KID: server_key.public}, issuer=ISSUER), clock=lambda: NOW)
    inner = Starlette(routes=[Route("/iot-connectivity/v1/devices/{iccid}", echo)])
    app = GuardMiddleware(inner, validator=validator)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        target = "/iot-connectivity/v1/devices/1"
        response = await c.get(target, headers=caller.headers("GET", target))
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["error_code"] == "internal"


async def test_encoded_question_mark_does_not_shorten_the_product_path(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    # "/iot-connectivity/v1%3F/x" would decode to a "?" in the signed uri (ambiguous with a
    # query): refused before any product lookup (tests/adversarial, "%3F in the path").
    target = "/iot-connectivity/v1%3F/x"
    response = await client.get(target, headers={"Authorization": f"Bearer {caller.token}"})
    assert (response.status_code, response.json()["error_code"]) == (400, "request_malformed")


async def test_audit_lines_without_secrets(
    client: httpx.AsyncClient, caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    target = "/iot-connectivity/v1/devices/8901260000000000001"
    headers = caller.headers("GET", target, jti="audit-jti")
    with caplog.at_level(logging.INFO, logger="taap.audit"):
        await client.get(target, headers=headers)
        await client.get(target, headers=headers)  # replay
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "taap.audit"]
    assert [line["event"] for line in lines] == ["api_call_accepted", "api_call_refused"]
    assert lines[0]["client_id"] == "taap-client-a"
    assert lines[0]["jti"] == "audit-jti"
    assert lines[0]["product"] == "connectivity"
    assert (lines[1]["status"], lines[1]["error_code"]) == (401, "pop_replayed")
    text = caplog.text
    assert caller.token not in text
    assert headers["X-Authorization"] not in text


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/healthz/../sms/v1/messages", b"/healthz/../sms/v1/messages"),
        ("/healthz/../sms/v1/messages", b"/healthz/%2E%2E/sms/v1/messages"),
        ("/healthz/x", b"/healthz%2Fx"),
    ],
)
async def test_exemption_cannot_be_ridden_by_dot_segments(
    server_key: PrivateKey, path: str, raw_path: bytes
) -> None:
    # A raw ASGI scope: httpx would normalise the dot segments before sending.
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER))
    guard = GuardMiddleware(inner, validator=validator, exempt=["/healthz"])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [],
    }
    await guard(scope, receive, send)
    assert reached == []
    assert sent[0]["status"] in (400, 401)


async def test_exempt_prefix_subpath(server_key: PrivateKey) -> None:
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER))
    guard = GuardMiddleware(inner, validator=validator, exempt=["/healthz"])
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz/live",
        "raw_path": b"/healthz/live",
        "query_string": b"",
        "headers": [],
    }
    await guard(scope, None, None)  # type: ignore[arg-type]
    assert reached == ["/healthz/live"]
