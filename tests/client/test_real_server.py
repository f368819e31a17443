"""The SDK against the real token server and the guarded sample APIs, in-process (ASGI)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from kit.loopback import serve
from taap.client import NO_RETRY, ClientCredentials, PopAuth, Secret, Token, TokenClient
from taap.core import PrivateKey
from taap.errors import ClientAuthError, NotSubscribedError, TaapError, UnavailableError

from ._stack import Stack, build_stack
from .conftest import FakeClock

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def _auth(stack: Stack, credentials: ClientCredentials, version: str = "v2") -> PopAuth:
    transport = httpx.ASGITransport(app=stack)
    tokens = TokenClient(
        f"{stack.base_url}/oauth2/{version}/tokens",
        credentials,
        async_http=httpx.AsyncClient(transport=transport),
    )
    return PopAuth(tokens)


def _http(stack: Stack, auth: PopAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack), base_url=stack.base_url, auth=auth
    )


@pytest.mark.parametrize("version", ["v2", "v6"])
async def test_token_from_both_endpoints(
    stack: Stack, stack_credentials: ClientCredentials, version: str
) -> None:
    auth = _auth(stack, stack_credentials, version)
    token = await auth.tokens.afetch()
    await auth.tokens.aclose()
    data = json.loads(token.body)
    assert list(data) == ["id_token", "access_token", "expires_in", "scope", "status"]
    assert data["expires_in"] == "3599"
    assert token.expires_in == 3599


async def test_get_and_post_through_the_guard(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    auth = _auth(stack, stack_credentials)
    async with _http(stack, auth) as http:
        device = await http.get(DEVICE)
        sent = await http.post("/sms/v1/messages", json={"to": "+14255550100", "text": "hi"})
        missing = await http.get("/iot-connectivity/v1/devices/8901260000000000099")
    assert device.status_code == 200, device.text
    assert device.json()["iccid"] == "8901260000000000001"
    assert sent.status_code == 201, sent.text
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found"
    await auth.tokens.aclose()


async def test_n_calls_one_token_request(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    auth = _auth(stack, stack_credentials)
    async with _http(stack, auth) as http:
        statuses = [(await http.get(DEVICE)).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert stack.token_requests == 1
    await auth.tokens.aclose()


async def test_100_tasks_one_token_request(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    auth = _auth(stack, stack_credentials)
    async with _http(stack, auth) as http:
        answers = await asyncio.gather(*(http.get(DEVICE) for _ in range(100)))
    assert {a.status_code for a in answers} == {200}
    assert stack.token_requests == 1
    await auth.tokens.aclose()


async def test_wrong_secret_is_client_auth_failed(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    wrong = ClientCredentials(
        client_id=stack.client_id, client_secret=Secret("wrong"), key=stack_credentials.key
    )
    auth = _auth(stack, wrong)
    with pytest.raises(ClientAuthError):
        await auth.tokens.afetch()
    await auth.tokens.aclose()


async def test_unsubscribed_endpoint_is_not_subscribed(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    registry = stack.app.registry
    await registry.unsubscribe(stack.client_id, "call-verification")
    auth = _auth(stack, stack_credentials, "v6")
    with pytest.raises(NotSubscribedError):
        await auth.tokens.afetch()
    await auth.tokens.aclose()


def test_32_threads_one_token_request(stack: Stack, stack_credentials: ClientCredentials) -> None:
    with serve(stack) as url:
        tokens = TokenClient(f"{url}/oauth2/v2/tokens", stack_credentials)
        barrier = threading.Barrier(32)
        statuses: list[int] = []
        with httpx.Client(base_url=url, auth=PopAuth(tokens)) as http:

            def worker() -> None:
                barrier.wait()
                statuses.append(http.get(DEVICE).status_code)

            threads = [threading.Thread(target=worker) for _ in range(32)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        tokens.close()
    assert statuses == [200] * 32
    assert stack.token_requests == 1


def test_refresh_at_the_margin_with_one_clock(rsa_key: PrivateKey, other_key: PrivateKey) -> None:
    clock = FakeClock(time.time())
    start = clock.now
    stack = build_stack(rsa_key, other_key, "http://taap.test", clock=clock)
    credentials = ClientCredentials(
        client_id=stack.client_id, client_secret=Secret(stack.secret), key=rsa_key
    )
    with serve(stack) as url:
        tokens = TokenClient(f"{url}/oauth2/v2/tokens", credentials, clock=clock, margin=120)
        with httpx.Client(base_url=url, auth=PopAuth(tokens)) as http:
            first = http.get(DEVICE)
            clock.now = start + 3599 - 121
            second = http.get(DEVICE)
            clock.now = start + 3599 - 120
            third = http.get(DEVICE)
        tokens.close()
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert first.request.headers["authorization"] == second.request.headers["authorization"]
    assert third.request.headers["authorization"] != second.request.headers["authorization"]
    assert stack.token_requests == 2


def test_real_429_is_waited_out_then_the_token_comes(
    rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    clock = FakeClock(time.time())
    stack = build_stack(rsa_key, other_key, "http://taap.test", clock=clock)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # waiting moves both clocks, as real time would
        sleeps.append(seconds)
        clock.now += seconds

    with serve(stack) as url:
        wrong = ClientCredentials(
            client_id=stack.client_id, client_secret=Secret("wrong"), key=rsa_key
        )
        with TokenClient(f"{url}/oauth2/v2/tokens", wrong, clock=clock, retry=NO_RETRY) as bad:
            failures = []
            for _ in range(11):
                with pytest.raises(TaapError) as caught:
                    bad.fetch()
                failures.append(caught.value.error_code)
        right = ClientCredentials(
            client_id=stack.client_id, client_secret=Secret(stack.secret), key=rsa_key
        )
        with TokenClient(f"{url}/oauth2/v2/tokens", right, clock=clock, sleep=sleep) as good:
            token = good.fetch()
    assert failures == ["client_auth_failed"] * 10 + ["rate_limited"]
    assert token.access_token
    assert sleeps == [6.0]  # the server's Retry-After for "1 per 6 s"


def test_real_503_is_retried_a_bounded_number_of_times(
    rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    clock = FakeClock(time.time())
    stack = build_stack(rsa_key, other_key, "http://taap.test", clock=clock, replay_capacity=1)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    credentials = ClientCredentials(
        client_id=stack.client_id, client_secret=Secret(stack.secret), key=rsa_key
    )
    with (
        serve(stack) as url,
        TokenClient(f"{url}/oauth2/v2/tokens", credentials, clock=clock, sleep=sleep) as client,
    ):
        client.fetch()  # fills the one-entry replay store for the PoP's lifetime
        with pytest.raises(UnavailableError) as caught:
            client.fetch()
    assert caught.value.error_code == "unavailable"
    assert len(sleeps) == 3
    assert stack.token_requests == 1 + 4


async def test_guard_rejecting_the_token_triggers_one_refresh(
    stack: Stack, stack_credentials: ClientCredentials
) -> None:
    auth = _auth(stack, stack_credentials)
    real = await auth.tokens.afetch()
    # A token the guard cannot accept (signed by the right server, but tampered).
    tampered = real.access_token[:-4] + (
        "AAAA" if not real.access_token.endswith("AAAA") else "BBBB"
    )
    auth.tokens.cache.store(
        Token(access_token=tampered, id_token=None, expires_in=3599, obtained_at=time.time())
    )
    async with _http(stack, auth) as http:
        answer = await http.get(DEVICE)
    await auth.tokens.aclose()
    assert answer.status_code == 200, answer.text
    assert answer.history[0].status_code == 401
    assert answer.history[0].json()["error_code"] == "token_invalid"
    assert stack.token_requests == 2
