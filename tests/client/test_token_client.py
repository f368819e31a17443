"""TokenClient against a token server: both versions, cache, single flight, retries, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from taap.client import ClientCredentials, RetryPolicy, Secret, TokenClient, TokenEndpoint
from taap.errors import (
    BodyInvalidError,
    ClientAuthError,
    RateLimitedError,
    TransportError,
    UnavailableError,
)

from ._fake import FakeTaap, Scripted
from .conftest import FakeClock

BASE = "http://fake.test"


def _async_client(fake: FakeTaap, **options: object) -> TokenClient:
    return _client(fake, f"{BASE}/oauth2/v2/tokens", **options)


def _client(fake: FakeTaap, url: str, **options: object) -> TokenClient:
    credentials = options.pop("credentials")
    transport = httpx.ASGITransport(app=fake.app())
    return TokenClient(
        url,
        credentials,  # type: ignore[arg-type]
        async_http=httpx.AsyncClient(transport=transport),
        **options,  # type: ignore[arg-type]
    )


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.mark.parametrize("version", ["v2", "v6"])
async def test_fetch_both_versions(
    fake: FakeTaap, credentials: ClientCredentials, version: str
) -> None:
    async with _client(fake, f"{BASE}/oauth2/{version}/tokens", credentials=credentials) as client:
        token = await client.afetch()
    assert token.access_token.count(".") == 2
    assert token.id_token
    assert token.id_token != token.access_token
    assert token.expires_in == 3599
    body = fake.token_bodies[-1]
    if version == "v2":
        assert body == b""
    else:
        assert json.loads(body)["grant-type"] == "client_credentials"


async def test_v6_context_reaches_the_access_token(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    endpoint = TokenEndpoint(url=f"{BASE}/oauth2/v6/tokens", store_id="S1", dealer_code="D1")
    async with _client(fake, endpoint.url, credentials=credentials) as client:
        client.endpoint = endpoint
        await client.afetch()
    assert json.loads(fake.token_bodies[-1])["storeId"] == "S1"


async def test_numeric_expires_in(fake: FakeTaap, credentials: ClientCredentials) -> None:
    fake.expires_in_number = True
    async with _async_client(fake, credentials=credentials) as client:
        assert (await client.afetch()).expires_in == 3599


async def test_many_calls_one_token_request(fake: FakeTaap, credentials: ClientCredentials) -> None:
    async with _async_client(fake, credentials=credentials) as client:
        tokens = [await client.atoken() for _ in range(20)]
    assert fake.token_requests == 1
    assert len({t.access_token for t in tokens}) == 1


async def test_100_concurrent_tasks_cause_one_token_request(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    fake.token_delay = 0.05
    async with _async_client(fake, credentials=credentials) as client:
        tokens = await asyncio.gather(*(client.atoken() for _ in range(100)))
    assert fake.token_requests == 1
    assert len({t.access_token for t in tokens}) == 1


def test_32_threads_cause_one_token_request(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    fake.token_delay = 0.05
    client = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials)
    barrier = threading.Barrier(32)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(client.token().access_token)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(results) == 32
    assert len(set(results)) == 1
    assert fake.token_requests == 1


async def test_refresh_at_the_margin(fake: FakeTaap, credentials: ClientCredentials) -> None:
    clock = FakeClock(time.time())
    fake.clock = clock
    start = clock.now
    async with _async_client(fake, credentials=credentials, clock=clock, margin=60) as client:
        first = await client.atoken()
        clock.now = start + 3599 - 60 - 1  # one second before the margin: still reused
        assert await client.atoken() is first
        clock.now = start + 3599 - 60  # at the margin: refreshed
        second = await client.atoken()
    assert second is not first
    assert fake.token_requests == 2


async def test_margin_is_capped_at_half_a_short_lifetime(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    clock = FakeClock(time.time())
    fake.clock, fake.token_ttl = clock, 61  # expires_in 60 <= margin 60
    async with _async_client(fake, credentials=credentials, clock=clock) as client:
        first = await client.atoken()
        clock.now += 29
        assert await client.atoken() is first
        clock.now += 1
        assert await client.atoken() is not first


async def test_429_honours_retry_after(fake: FakeTaap, credentials: ClientCredentials) -> None:
    sleeps = Sleeps()
    fake.token_script.append(
        Scripted(429, {"error": "slow_down", "error_code": "rate_limited"}, {"Retry-After": "2"})
    )
    async with _async_client(fake, credentials=credentials, async_sleep=sleeps.asleep) as client:
        token = await client.afetch()
    assert token.access_token
    assert sleeps.calls == [2.0]
    assert fake.token_requests == 2


async def test_503_backs_off_exponentially(fake: FakeTaap, credentials: ClientCredentials) -> None:
    sleeps = Sleeps()
    body = {"error": "temporarily_unavailable", "error_code": "unavailable"}
    fake.token_script.extend([Scripted(503, body), Scripted(503, body), Scripted(503, body)])
    async with _async_client(fake, credentials=credentials, async_sleep=sleeps.asleep) as client:
        await client.afetch()
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert fake.token_requests == 4


async def test_retries_are_bounded(fake: FakeTaap, credentials: ClientCredentials) -> None:
    sleeps = Sleeps()
    body = {"error": "temporarily_unavailable", "error_code": "unavailable"}
    fake.token_script.extend(Scripted(503, body) for _ in range(10))
    retry = RetryPolicy(max_retries=2)
    async with _async_client(
        fake, credentials=credentials, async_sleep=sleeps.asleep, retry=retry
    ) as client:
        with pytest.raises(UnavailableError) as caught:
            await client.afetch()
    assert caught.value.error_code == "unavailable"
    assert fake.token_requests == 3
    assert len(sleeps.calls) == 2


async def test_too_long_retry_after_is_not_waited(
    fake: FakeTaap, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    fake.token_script.append(
        Scripted(429, {"error": "slow_down", "error_code": "rate_limited"}, {"Retry-After": "600"})
    )
    async with _async_client(fake, credentials=credentials, async_sleep=sleeps.asleep) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.afetch()
    assert caught.value.retry_after == 600
    assert sleeps.calls == []


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(400, "body_invalid", BodyInvalidError), (401, "client_auth_failed", ClientAuthError)],
)
async def test_other_4xx_are_never_retried(
    fake: FakeTaap, credentials: ClientCredentials, status: int, code: str, error: type
) -> None:
    sleeps = Sleeps()
    fake.token_script.append(Scripted(status, {"error": "x", "error_code": code}))
    async with _async_client(fake, credentials=credentials, async_sleep=sleeps.asleep) as client:
        with pytest.raises(error):
            await client.afetch()
    assert fake.token_requests == 1
    assert sleeps.calls == []


async def test_wrong_secret_is_a_typed_error(fake: FakeTaap, rsa_key: object) -> None:
    from taap.core import PrivateKey

    assert isinstance(rsa_key, PrivateKey)
    wrong = ClientCredentials(client_id=fake.client_id, client_secret=Secret("nope"), key=rsa_key)
    async with _async_client(fake, credentials=wrong) as client:
        with pytest.raises(ClientAuthError) as caught:
            await client.afetch()
    assert caught.value.status_code == 401


@pytest.fixture
def refused_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/oauth2/v2/tokens"


def test_connection_refused_is_retried_then_reported(
    refused_url: str, credentials: ClientCredentials
) -> None:
    sleeps = Sleeps()
    client = TokenClient(refused_url, credentials, sleep=sleeps)
    with pytest.raises(TransportError) as caught:
        client.fetch()
    client.close()
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert caught.value.description == (
        f"cannot connect to the token server {refused_url}: connection refused (4 attempts)"
    )


def test_connection_refused_then_server_up(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        with httpx.Client() as real:
            return real.send(request)

    sleeps = Sleeps()
    http = httpx.Client(transport=httpx.MockTransport(flaky))
    client = TokenClient(f"{fake_url}/oauth2/v2/tokens", credentials, sleep=sleeps, http=http)
    assert client.fetch().access_token
    assert sleeps.calls == [0.5]
    assert fake.token_requests == 1
    http.close()


def test_sync_fetch_over_loopback(
    fake: FakeTaap, fake_url: str, credentials: ClientCredentials
) -> None:
    with TokenClient(f"{fake_url}/oauth2/v6/tokens", credentials) as client:
        assert client.token() is client.token()
    assert fake.token_requests == 1
