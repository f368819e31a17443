"""PopAuth (httpx) and PopRequestsAuth (requests): steps 3-4, re-token on 401, retries."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest
import requests

from taap.client import ClientCredentials, PopAuth, PopRequestsAuth, RetryPolicy, Token, TokenClient
from taap.client.flows import NeedToken, Wait, call_flow
from taap.core import request_parts, verify_access_token, verify_pop_token
from taap.core.keys import PrivateKey
from taap.errors import PopBuildError, RequestMalformedError

from ._fake import ISSUER, KID, FakeTaap, Scripted

BASE = "http://fake.test"
TOKEN_INVALID = {"error": "invalid_token", "error_code": "token_invalid"}
POP_EXPIRED = {"error": "invalid_request", "error_code": "pop_expired"}
RATE_LIMITED = {"error": "slow_down", "error_code": "rate_limited"}
UNAVAILABLE = {"error": "temporarily_unavailable", "error_code": "unavailable"}


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)


def _async_http(
    fake: FakeTaap, credentials: ClientCredentials, **auth_options: object
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake.app())
    tokens = TokenClient(
        f"{BASE}/oauth2/v2/tokens", credentials, async_http=httpx.AsyncClient(transport=transport)
    )
    auth = PopAuth(tokens, **auth_options)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth)


# -- the plain generator, driven by hand ------------------------------------------------


def test_auth_flow_by_hand(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials, other_key: PrivateKey
) -> None:
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    auth = PopAuth(tokens)
    request = httpx.Request("POST", f"{fake_url}/api/things?q=a%20b", content=b'{"x": 1}')
    flow = auth.auth_flow(request)
    token_request = next(flow)
    assert token_request.url.path == "/oauth2/v2/tokens"
    with httpx.Client() as real:
        signed = flow.send(real.send(token_request))
    assert signed is request
    assert signed.headers["Content-Type"] == "application/json"
    bearer = signed.headers["Authorization"]
    assert bearer.startswith("Bearer ")
    access = verify_access_token(
        bearer[7:], keys={KID: other_key.public}, issuer=ISSUER, now=tokens.clock()
    )
    parts = request_parts(
        "POST", "/api/things", "q=a%20b", list(signed.headers.items()), signed.content
    )
    verified = verify_pop_token(
        signed.headers["X-Authorization"], keys=[access.cnf_key], request=parts, now=tokens.clock()
    )
    assert verified.names == ("Content-Type", "Authorization", "uri", "http-method", "body")
    assert parts.uri == "/api/things?q=a b"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    # The token is now cached: a second flow goes straight to the signed request.
    second = auth.auth_flow(httpx.Request("GET", f"{fake_url}/api/x"))
    assert next(second).url.path == "/api/x"
    tokens.close()


def test_auth_flow_by_hand_retokens_once_on_invalid_token(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    auth = PopAuth(tokens)
    tokens.token()
    flow = auth.auth_flow(httpx.Request("GET", f"{fake_url}/api/x"))
    first = next(flow)
    first_pop = first.headers["X-Authorization"]
    token_request = flow.send(httpx.Response(401, json=TOKEN_INVALID))
    assert token_request.url.path == "/oauth2/v2/tokens"
    with httpx.Client() as real:
        retried = flow.send(real.send(token_request))
    assert retried.headers["X-Authorization"] != first_pop
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, json=TOKEN_INVALID))  # only once
    tokens.close()


def test_auth_flow_by_hand_retries_like_httpx(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    flow = PopAuth(tokens, sleep=sleeps).auth_flow(httpx.Request("GET", f"{fake_url}/api/x"))
    first = next(flow)
    second = flow.send(httpx.Response(503, json=UNAVAILABLE))  # token server: wait, ask again
    assert second.url.path == "/oauth2/v2/tokens"
    assert second.headers["X-Authorization"] != first.headers["X-Authorization"]
    with httpx.Client() as real:
        signed = flow.send(real.send(second))
    assert signed.url.path == "/api/x"
    first_pop = signed.headers["X-Authorization"]
    retried = flow.send(httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "2"}))
    assert retried.headers["X-Authorization"] != first_pop  # the API: wait, resend signed anew
    assert sleeps.calls == [0.5, 2.0]
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    assert fake.token_requests == 1
    tokens.close()


def _token(name: str) -> Token:
    return Token(access_token=name, id_token=None, expires_in=3600, obtained_at=0.0)


def test_call_flow_step_by_step() -> None:
    """The rules of one call, without any I/O: what the flow asks for after each answer."""
    old, new = _token("old"), _token("new")
    flow = call_flow(lambda token: ("send", token), httpx.Response.json, RetryPolicy())
    assert next(flow) == NeedToken(None)
    assert flow.send(old) == ("send", old)
    assert flow.send(httpx.Response(503, json=UNAVAILABLE)) == Wait(0.5)
    assert flow.send(None) == ("send", old)
    assert flow.send(httpx.Response(401, json=TOKEN_INVALID)) == NeedToken(old)
    assert flow.send(new) == ("send", new)
    assert flow.send(httpx.Response(429, headers={"Retry-After": "3"})) == Wait(3.0)
    assert flow.send(None) == ("send", new)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, json=TOKEN_INVALID))  # a new token only once


def test_call_flow_gives_up_as_the_policy_says() -> None:
    flow = call_flow(lambda token: "send", httpx.Response.json, RetryPolicy(max_retries=1))
    next(flow)
    flow.send(_token("t"))
    assert flow.send(httpx.Response(503)) == Wait(0.5)
    assert flow.send(None) == "send"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(503))  # retries ran out: the 503 is the caller's
    flow = call_flow(lambda token: "send", httpx.Response.json, RetryPolicy())
    next(flow)
    flow.send(_token("t"))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(429, headers={"Retry-After": "600"}))  # over max_retry_after


# -- httpx.AsyncClient -------------------------------------------------------------------


async def test_async_get_signs_content_type_and_decoded_uri(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    async with _async_http(fake, credentials) as http:
        answer = await http.get("/api/devices/89%2B01", params={"q": "a b", "n": "1"})
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["uri"] == "/api/devices/89+01?q=a+b&n=1"
    assert seen["ehts"] == ["Content-Type", "Authorization", "uri", "http-method"]


async def test_async_post_signs_the_exact_body(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    body = '{"text": "héllo",  "spaces": true}'
    async with _async_http(fake, credentials) as http:
        answer = await http.post("/api/sms", content=body.encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["body"] == body
    assert answer.json()["ehts"][-1] == "body"


async def test_content_type_of_the_caller_is_kept_and_signed(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    async with _async_http(fake, credentials) as http:
        answer = await http.post(
            "/api/x", content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.request.headers["content-type"] == "application/json; charset=utf-8"


async def test_extra_signed_headers(fake: FakeTaap, credentials: ClientCredentials) -> None:
    async with _async_http(fake, credentials, signed_headers=["X-Request-Id"]) as http:
        answer = await http.get("/api/x", headers={"X-Request-Id": "r-1"})
        with pytest.raises(PopBuildError):
            await http.get("/api/x")
    assert answer.json()["ehts"] == [
        "Content-Type",
        "Authorization",
        "X-Request-Id",
        "uri",
        "http-method",
    ]


async def test_ambiguous_url_refused_before_sending(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    async with _async_http(fake, credentials) as http:
        with pytest.raises(RequestMalformedError):
            await http.get("/api/a%2Fb")
    assert fake.api_requests == 0


async def test_async_many_calls_one_token(fake: FakeTaap, credentials: ClientCredentials) -> None:
    async with _async_http(fake, credentials) as http:
        for _ in range(5):
            assert (await http.get("/api/x")).status_code == 200
    assert fake.token_requests == 1
    assert fake.api_requests == 5


async def test_invalid_token_refreshes_once_and_retries_once(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.api_script.append(Scripted(401, TOKEN_INVALID))
    async with _async_http(fake, credentials) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 200
    assert fake.token_requests == 2
    assert fake.api_requests == 2


async def test_invalid_token_twice_is_returned(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.api_script.extend([Scripted(401, TOKEN_INVALID), Scripted(401, TOKEN_INVALID)])
    async with _async_http(fake, credentials) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 401
    assert fake.token_requests == 2
    assert fake.api_requests == 2


async def test_revoked_token_is_replaced(fake: FakeTaap, credentials: ClientCredentials) -> None:
    async with _async_http(fake, credentials) as http:
        first = await http.get("/api/x")
        fake.revoked.add(first.request.headers["Authorization"][7:])
        second = await http.get("/api/x")
    assert second.status_code == 200, second.text
    assert second.request.headers["Authorization"] != first.request.headers["Authorization"]


async def test_other_401_is_not_retried(fake: FakeTaap, credentials: ClientCredentials) -> None:
    fake.api_script.append(Scripted(401, POP_EXPIRED))
    async with _async_http(fake, credentials) as http:
        answer = await http.get("/api/x")
    assert answer.json()["error_code"] == "pop_expired"
    assert fake.api_requests == 1
    assert fake.token_requests == 1


async def test_api_429_and_503_retried_with_a_fresh_pop(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    fake.api_script.extend(
        [
            Scripted(
                429, {"error": "slow_down", "error_code": "rate_limited"}, {"Retry-After": "3"}
            ),
            Scripted(503, {"error": "temporarily_unavailable", "error_code": "unavailable"}),
        ]
    )
    async with _async_http(fake, credentials, async_sleep=sleeps.asleep) as http:
        answer = await http.post("/api/x", content=b'{"a":1}')
    assert answer.status_code == 200, answer.text
    assert sleeps.calls == [3.0, 1.0]
    assert len(answer.history) == 2
    assert len(set(fake.api_pops)) == 3


async def test_api_400_never_retried(fake: FakeTaap, credentials: ClientCredentials) -> None:
    sleeps = Sleeps()
    fake.api_script.append(
        Scripted(400, {"error": "invalid_request", "error_code": "body_invalid"})
    )
    async with _async_http(fake, credentials, async_sleep=sleeps.asleep) as http:
        answer = await http.get("/api/x")
    assert answer.status_code == 400
    assert fake.api_requests == 1
    assert sleeps.calls == []


# -- httpx.Client and threads over loopback -----------------------------------------------


def _in_threads(count: int, worker: Callable[[], None]) -> None:
    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_sync_client_32_threads_one_token(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    fake.token_delay = 0.05
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    barrier = threading.Barrier(32)
    statuses: list[int] = []
    with httpx.Client(base_url=fake_url, auth=PopAuth(tokens)) as http:

        def worker() -> None:
            barrier.wait()
            statuses.append(http.get("/api/x").status_code)

        _in_threads(32, worker)
    tokens.close()
    assert statuses == [200] * 32
    assert fake.token_requests == 1
    assert fake.api_requests == 32


def test_sync_client_retokens_and_retries(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    fake.api_script.extend(
        [Scripted(401, TOKEN_INVALID), Scripted(503, {"error_code": "unavailable"})]
    )
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    with httpx.Client(base_url=fake_url, auth=PopAuth(tokens, sleep=sleeps)) as http:
        answer = http.post("/api/x", json={"a": 1})
    tokens.close()
    assert answer.status_code == 200, answer.text
    assert fake.token_requests == 2
    assert sleeps.calls == [0.5]


# -- requests ------------------------------------------------------------------------------


def test_requests_adapter(fake: FakeTaap, fake_url: str, credentials: ClientCredentials) -> None:
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    session = requests.Session()
    session.auth = PopRequestsAuth(tokens)
    got = session.get(f"{fake_url}/api/things", params={"q": "a b"})
    posted = session.post(f"{fake_url}/api/things", data="héllo wörld")
    as_json = session.post(f"{fake_url}/api/things", json={"k": [1, 2]})
    session.close()
    tokens.close()
    assert got.status_code == 200, got.text
    assert got.json()["uri"] == "/api/things?q=a+b"
    assert posted.json()["body"] == "héllo wörld"
    assert as_json.json()["ehts"][-1] == "body"
    assert fake.token_requests == 1


def test_requests_adapter_retokens_and_retries(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    fake.api_script.extend(
        [
            Scripted(401, TOKEN_INVALID),
            Scripted(429, {"error_code": "rate_limited"}, {"Retry-After": "2"}),
        ]
    )
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    with requests.Session() as session:
        session.auth = PopRequestsAuth(tokens, sleep=sleeps)
        answer = session.post(f"{fake_url}/api/x", json={"a": 1})
        fake.api_script.append(Scripted(400, {"error_code": "body_invalid"}))
        refused = session.get(f"{fake_url}/api/x")
    tokens.close()
    assert answer.status_code == 200, answer.text
    assert len(answer.history) == 2
    assert fake.token_requests == 2
    assert sleeps.calls == [2.0]
    assert refused.status_code == 400
    assert fake.api_requests == 4


def test_requests_adapter_32_threads_one_token(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    fake.token_delay = 0.05
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    auth = PopRequestsAuth(tokens)
    barrier = threading.Barrier(32)
    statuses: list[int] = []

    def worker() -> None:
        with requests.Session() as session:
            barrier.wait()
            statuses.append(session.get(f"{fake_url}/api/x", auth=auth).status_code)

    _in_threads(32, worker)
    tokens.close()
    assert statuses == [200] * 32
    assert fake.token_requests == 1


def test_requests_adapter_refuses_streamed_bodies(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    tokens = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    with requests.Session() as session, pytest.raises(PopBuildError):
        session.post(f"{fake_url}/api/x", data=iter([b"a", b"b"]), auth=PopRequestsAuth(tokens))
    tokens.close()
    assert fake.api_requests == 0
