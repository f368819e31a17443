"""Revocation and introspection from the client, without a token server: the requests as
built and signed, the flows step by step, and the re-token rules of a call for 401
``token_revoked`` and 403 ``not_subscribed`` (driven by hand and through httpx/requests)."""

from __future__ import annotations

import base64
import time
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import requests

from taap.client import (
    ClientCredentials,
    PopAuth,
    PopRequestsAuth,
    RetryPolicy,
    Secret,
    Token,
    TokenClient,
    aintrospect,
    build_introspection_request,
    build_revocation_request,
    introspect,
)
from taap.client.flows import NeedToken, Wait, call_flow
from taap.client.revocation import server_endpoint
from taap.core import request_parts, verify_pop_token
from taap.errors import ClientAuthError, TransportError, UnavailableError

from ._fake import FakeTaap, Scripted
from .conftest import CLIENT_ID, SECRET, FakeClock

BASE = "http://fake.test"
REVOKED = {"error": "invalid_token", "error_code": "token_revoked"}
NOT_SUBSCRIBED = {"error": "access_denied", "error_code": "not_subscribed"}
UNAVAILABLE = {"error": "temporarily_unavailable", "error_code": "unavailable"}
CLIENT_AUTH = {"error": "invalid_client", "error_code": "client_auth_failed"}


def _token(name: str, obtained_at: float = 0.0) -> Token:
    return Token(access_token=name, id_token=f"id-{name}", expires_in=3600, obtained_at=obtained_at)


def _verified_names(request: httpx.Request, credentials: ClientCredentials) -> tuple[str, ...]:
    parts = request_parts(
        request.method,
        request.url.raw_path.decode().partition("?")[0],
        request.url.query.decode(),
        list(request.headers.items()),
        request.content,
    )
    pop = verify_pop_token(
        request.headers["X-Authorization"],
        keys=[credentials.key.public],
        request=parts,
        now=time.time(),
    )
    return pop.names


# -- where the endpoints are ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/oauth2/v2/tokens", "http://127.0.0.1:8000/oauth2/v1/revoke"),
        ("https://a.example/oauth2/v6/tokens?x=1", "https://a.example/oauth2/v1/revoke"),
        ("https://gw.example/taap/oauth2/v2/tokens", "https://gw.example/taap/oauth2/v1/revoke"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/oauth2/v1/revoke"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/oauth2/v1/revoke"),
        ("https://a.example/token", "https://a.example/oauth2/v1/revoke"),
        ("https://a.example/oauth2/v1/revoke", "https://a.example/oauth2/v1/revoke"),
    ],
)
def test_server_endpoint(url: str, expected: str) -> None:
    assert server_endpoint(url, "/oauth2/v1/revoke") == expected


@pytest.mark.parametrize("url", ["ftp://a.example/x", "/oauth2/v2/tokens", "a.example"])
def test_server_endpoint_needs_an_absolute_url(url: str) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        server_endpoint(url, "/oauth2/v1/revoke")


def test_revocation_url_default_and_explicit(credentials: ClientCredentials) -> None:
    derived = TokenClient(f"{BASE}/oauth2/v6/tokens", credentials)
    assert derived.revocation_url == f"{BASE}/oauth2/v1/revoke"
    explicit = TokenClient(
        f"{BASE}/oauth2/v2/tokens", credentials, revocation_url="https://other.test/revoke"
    )
    assert explicit.revocation_url == "https://other.test/revoke"


# -- the requests ----------------------------------------------------------------------------
def test_revocation_request_is_signed_like_a_token_request(
    credentials: ClientCredentials,
) -> None:
    prepared = build_revocation_request(
        f"{BASE}/oauth2/v1/revoke", credentials, "a.b-c_", token_type_hint="access_token"
    )
    headers = dict(prepared.headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Authorization"] == credentials.authorization
    assert parse_qsl(prepared.body.decode()) == [
        ("token", "a.b-c_"),
        ("token_type_hint", "access_token"),
    ]
    request = httpx.Request(
        "POST", prepared.url, headers=list(prepared.headers), content=prepared.body
    )
    names = _verified_names(request, credentials)
    assert names == ("Content-Type", "Authorization", "uri", "http-method", "body")
    assert SECRET not in repr(prepared)


def test_empty_token_is_refused_before_sending(credentials: ClientCredentials) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        build_revocation_request(f"{BASE}/oauth2/v1/revoke", credentials, "")
    with pytest.raises(ValueError, match="non-empty"):
        build_introspection_request(
            f"{BASE}/oauth2/v1/introspect", "", resource_server_id="rs", secret=Secret("s")
        )


def test_introspection_request() -> None:
    prepared = build_introspection_request(
        f"{BASE}/oauth2/v1/introspect", "tok", resource_server_id="rs-1", secret=Secret("pw")
    )
    headers = dict(prepared.headers)
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"rs-1:pw").decode()
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Authorization" not in headers
    assert prepared.body == b"token=tok"
    with pytest.raises(ValueError, match="':'"):
        build_introspection_request(
            f"{BASE}/x", "tok", resource_server_id="rs:1", secret=Secret("pw")
        )


# -- revoke_flow, step by step ---------------------------------------------------------------
def test_revoke_without_a_token_sends_nothing(credentials: ClientCredentials) -> None:
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials)
    flow = client.revoke_flow()
    with pytest.raises(StopIteration) as stop:
        next(flow)
    assert stop.value.value is False


def test_revoke_flow_drops_the_cached_token_and_retries(credentials: ClientCredentials) -> None:
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials)
    cached = _token("cached", obtained_at=client.clock())
    client.cache.store(cached)
    flow = client.revoke_flow()
    first = next(flow)
    assert client.cache.held() is None  # no call signs with a token being revoked
    assert first.url == f"{BASE}/oauth2/v1/revoke"
    assert dict(parse_qsl(first.content.decode())) == {"token": "cached"}
    assert flow.send(httpx.Response(503, json=UNAVAILABLE)) == Wait(0.5)
    second = flow.send(None)
    assert second.headers["X-Authorization"] != first.headers["X-Authorization"]
    with pytest.raises(StopIteration) as stop:
        flow.send(httpx.Response(200))
    assert stop.value.value is True


@pytest.mark.parametrize("which", ["access_token", "id_token"])
def test_revoking_the_cached_token_by_value_drops_it(
    credentials: ClientCredentials, which: str
) -> None:
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials)
    cached = _token("cached", obtained_at=client.clock())
    client.cache.store(cached)
    next(client.revoke_flow(getattr(cached, which)))
    assert client.cache.held() is None


def test_revoking_another_token_keeps_the_cache(credentials: ClientCredentials) -> None:
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials)
    cached = _token("cached", obtained_at=client.clock())
    client.cache.store(cached)
    request = next(client.revoke_flow("someone-else"))
    assert dict(parse_qsl(request.content.decode())) == {"token": "someone-else"}
    assert client.cache.held() is cached


def test_revoke_errors_are_typed(credentials: ClientCredentials) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=CLIENT_AUTH)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials, http=http)
    with pytest.raises(ClientAuthError):
        client.revoke("t")


def test_revoke_out_of_retries_names_the_endpoint(credentials: ClientCredentials) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(down))
    client = TokenClient(
        f"{BASE}/oauth2/v2/tokens",
        credentials,
        http=http,
        retry=RetryPolicy(max_retries=1),
        sleep=lambda seconds: None,
    )
    with pytest.raises(TransportError) as caught:
        client.revoke("t")
    assert caught.value.description.startswith(
        f"cannot connect to the token server {BASE}/oauth2/v1/revoke"
    )
    assert caught.value.description.endswith("(2 attempts)")


async def test_pop_auth_revoke_delegates(credentials: ClientCredentials) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(answer)
    tokens = TokenClient(
        f"{BASE}/oauth2/v2/tokens",
        credentials,
        http=httpx.Client(transport=transport),
        async_http=httpx.AsyncClient(transport=transport),
    )
    auth = PopAuth(tokens)
    assert auth.revoke() is False  # nothing cached, nothing sent
    assert seen == []
    tokens.cache.store(_token("one", obtained_at=tokens.clock()))
    assert auth.revoke() is True
    tokens.cache.store(_token("two", obtained_at=tokens.clock()))
    assert await auth.arevoke() is True
    assert await auth.arevoke("three", token_type_hint="access_token") is True
    bodies = [dict(parse_qsl(r.content.decode())) for r in seen]
    assert bodies == [
        {"token": "one"},
        {"token": "two"},
        {"token": "three", "token_type_hint": "access_token"},
    ]
    assert all(_verified_names(r, credentials)[-1] == "body" for r in seen)
    assert PopRequestsAuth(tokens).revoke("four") is True


# -- introspection -------------------------------------------------------------------------
def _introspection_server(*answers: httpx.Response) -> httpx.MockTransport:
    pending = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"rs:pw").decode()
        return pending.pop(0)

    return httpx.MockTransport(answer)


def test_introspect_answers_and_errors() -> None:
    url = f"{BASE}/oauth2/v1/introspect"
    live = {"active": True, "client_id": CLIENT_ID, "cnf": {"jkt": "x"}}
    transport = _introspection_server(
        httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "0"}),
        httpx.Response(200, json=live),
        httpx.Response(200, json={"active": False}),
        httpx.Response(200, json={"active": "yes"}),
        httpx.Response(401, json=CLIENT_AUTH),
    )
    with httpx.Client(transport=transport) as http:
        ask = {"resource_server_id": "rs", "secret": "pw", "http": http, "sleep": lambda s: None}
        assert introspect(url, "t", **ask) == live  # type: ignore[arg-type]
        assert introspect(url, "t", **ask) == {"active": False}  # type: ignore[arg-type]
        with pytest.raises(TransportError, match="boolean 'active'"):
            introspect(url, "t", **ask)  # type: ignore[arg-type]
        with pytest.raises(ClientAuthError):
            introspect(url, "t", **ask)  # type: ignore[arg-type]


async def test_aintrospect() -> None:
    transport = _introspection_server(
        httpx.Response(503, json=UNAVAILABLE),
        httpx.Response(503, json=UNAVAILABLE),
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(UnavailableError):
            await aintrospect(
                f"{BASE}/oauth2/v1/introspect",
                "t",
                resource_server_id="rs",
                secret=Secret("pw"),
                http=http,
                sleep=sleep,
                retry=RetryPolicy(max_retries=1),
            )
    assert waits == [0.5]


# -- the call flow: token_revoked and not_subscribed -----------------------------------------
def _flow(outdated: bool = True) -> Generator[Any, Any, None]:
    return call_flow(
        lambda token: ("send", token),
        httpx.Response.json,
        RetryPolicy(),
        outdated=lambda token: outdated,
    )


def test_token_revoked_retokens_once() -> None:
    old, new = _token("old"), _token("new")
    flow = _flow()
    assert next(flow) == NeedToken(None)
    assert flow.send(old) == ("send", old)
    assert flow.send(httpx.Response(401, json=REVOKED)) == NeedToken(old)
    assert flow.send(new) == ("send", new)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, json=REVOKED))


@pytest.mark.parametrize("body", [REVOKED, {"error_code": "token_revoked"}])
def test_token_revoked_is_recognised_by_either_field(body: dict[str, str]) -> None:
    flow = _flow(outdated=False)
    next(flow)
    flow.send(_token("t"))
    assert isinstance(flow.send(httpx.Response(401, json=body)), NeedToken)


def test_not_subscribed_retokens_an_outdated_token_once() -> None:
    old, new = _token("old"), _token("new")
    flow = _flow(outdated=True)
    next(flow)
    flow.send(old)
    assert flow.send(httpx.Response(403, json=NOT_SUBSCRIBED)) == NeedToken(old)
    assert flow.send(new) == ("send", new)
    with pytest.raises(StopIteration):  # the fresh token is refused too: that is the answer
        flow.send(httpx.Response(403, json=NOT_SUBSCRIBED))


def test_not_subscribed_with_a_recent_token_is_the_answer() -> None:
    flow = _flow(outdated=False)
    next(flow)
    flow.send(_token("t"))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(403, json=NOT_SUBSCRIBED))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json={"error": "access_denied", "error_code": "forbidden"}),
        httpx.Response(403, text="<html>proxy says no</html>"),
        httpx.Response(404, json=NOT_SUBSCRIBED),
    ],
)
def test_other_refusals_are_not_retokened(answer: httpx.Response) -> None:
    flow = _flow(outdated=True)
    next(flow)
    flow.send(_token("t"))
    with pytest.raises(StopIteration):
        flow.send(answer)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (httpx.Response(401, json=REVOKED), httpx.Response(403, json=NOT_SUBSCRIBED)),
        (httpx.Response(403, json=NOT_SUBSCRIBED), httpx.Response(401, json=REVOKED)),
    ],
)
def test_one_new_token_per_call_whatever_the_reason(
    first: httpx.Response, second: httpx.Response
) -> None:
    flow = _flow(outdated=True)
    next(flow)
    flow.send(_token("old"))
    assert isinstance(flow.send(first), NeedToken)
    flow.send(_token("new"))
    with pytest.raises(StopIteration):
        flow.send(second)


def test_may_predate_subscription_is_the_token_age(credentials: ClientCredentials) -> None:
    clock = FakeClock(1000.0)
    client = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials, clock=clock)
    token = _token("t", obtained_at=1000.0)
    assert not client.may_predate_subscription(token)
    clock.now = 1004.9
    assert not client.may_predate_subscription(token)
    clock.now = 1005.0
    assert client.may_predate_subscription(token)
    eager = TokenClient(f"{BASE}/oauth2/v2/tokens", credentials, clock=clock, resubscribe_age=0)
    assert eager.may_predate_subscription(_token("t", obtained_at=clock.now))
    with pytest.raises(ValueError, match="resubscribe_age"):
        TokenClient(f"{BASE}/oauth2/v2/tokens", credentials, resubscribe_age=-1)


# -- the same rules through httpx and requests, against the fake server ----------------------
def _async_http(fake: FakeTaap, credentials: ClientCredentials, age: float) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake.app())
    tokens = TokenClient(
        f"{BASE}/oauth2/v2/tokens",
        credentials,
        async_http=httpx.AsyncClient(transport=transport),
        resubscribe_age=age,
    )
    return httpx.AsyncClient(transport=transport, base_url=BASE, auth=PopAuth(tokens))


async def test_async_not_subscribed_retokens_an_old_token(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.api_script.append(Scripted(403, NOT_SUBSCRIBED))
    async with _async_http(fake, credentials, age=0) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 200, answer.text
    assert (fake.token_requests, fake.api_requests) == (2, 2)


async def test_async_not_subscribed_with_a_fresh_token_is_returned(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.api_script.append(Scripted(403, NOT_SUBSCRIBED))
    async with _async_http(fake, credentials, age=3600) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 403
    assert answer.json()["error_code"] == "not_subscribed"
    assert (fake.token_requests, fake.api_requests) == (1, 1)


async def test_async_token_revoked_replaces_the_token(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.api_script.append(Scripted(401, REVOKED))
    async with _async_http(fake, credentials, age=3600) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 200, answer.text
    assert (fake.token_requests, fake.api_requests) == (2, 2)


def test_requests_not_subscribed_twice_is_returned(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    fake.api_script.extend([Scripted(403, NOT_SUBSCRIBED), Scripted(403, NOT_SUBSCRIBED)])
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials, resubscribe_age=0)
    with requests.Session() as session:
        session.auth = PopRequestsAuth(tokens)
        answer = session.get(f"{fake_url}/api/x")
    tokens.close()
    assert answer.status_code == 403
    assert len(answer.history) == 1
    assert (fake.token_requests, fake.api_requests) == (2, 2)
