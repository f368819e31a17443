"""JwksKeys: discovery, TTL cache, rate-limited refresh on an unknown kid, stale serving, and the
fetch-URL rules. The token server is a small ASGI app behind httpx.ASGITransport; the clock is a
variable the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from resource_kit import ISSUER, NOW, Caller, make_token
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from taap.core import PrivateKey, generate_private_key, request_parts
from taap.errors import ConfigurationError, TokenInvalidError, UnavailableError
from taap.resource import JwksKeys, Validator, parse_jwks
from taap.resource.keys import check_fetch_url

BASE = "http://127.0.0.1:9"  # never dialled: the transport is in-process


@dataclass
class FakeTokenServer:
    keys: dict[str, PrivateKey]
    fail: bool = False
    redirect: bool = False
    hits: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            self.hits.append("discovery")
            if self.redirect:
                return RedirectResponse("https://elsewhere.example/.well-known/x")
            return JSONResponse({"issuer": ISSUER, "jwks_uri": BASE + "/oauth2/v1/jwks"})

        async def jwks(request: Request) -> Response:
            self.hits.append("jwks")
            if self.fail:
                return JSONResponse({"error": "down"}, status_code=503)
            entries = [
                {**k.public.jwk, "kid": kid, "use": "sig", "alg": "RS256"}
                for kid, k in self.keys.items()
            ]
            return JSONResponse({"keys": entries})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/oauth2/v1/jwks", jwks),
            ]
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(server_key: PrivateKey) -> FakeTokenServer:
    return FakeTokenServer({"k1": server_key})


def provider(server: FakeTokenServer, clock: Clock, **kw: Any) -> JwksKeys:
    return JwksKeys(
        BASE,
        ttl=300,
        min_refresh=30,
        clock=clock,
        transport=httpx.ASGITransport(app=server.app()),
        **kw,
    )


async def test_discovery_then_jwks_then_cached(server: FakeTokenServer, clock: Clock) -> None:
    keys = provider(server, clock)
    keyset = await keys.current()
    assert set(keyset.keys) == {"k1"}
    assert keyset.issuer == ISSUER
    clock.now += 299
    await keys.current()
    assert server.hits == ["discovery", "jwks"]


async def test_ttl_expiry_refetches_jwks_only(server: FakeTokenServer, clock: Clock) -> None:
    keys = provider(server, clock)
    await keys.current()
    clock.now += 300
    await keys.current()
    assert server.hits == ["discovery", "jwks", "jwks"]


async def test_unknown_kid_refresh_rate_limited(
    server: FakeTokenServer, clock: Clock, other_key: PrivateKey
) -> None:
    keys = provider(server, clock)
    await keys.current()
    server.keys["k2"] = other_key
    clock.now += 29
    assert "k2" not in (await keys.refresh()).keys  # within min_refresh: no fetch
    assert server.hits.count("jwks") == 1
    clock.now += 1
    assert "k2" in (await keys.refresh()).keys
    assert server.hits.count("jwks") == 2


async def test_fetch_failure_serves_stale_then_fails_closed(
    server: FakeTokenServer, clock: Clock
) -> None:
    keys = provider(server, clock, max_stale=600)
    await keys.current()
    server.fail = True
    clock.now += 300
    assert set((await keys.current()).keys) == {"k1"}  # stale but within max_stale
    fetches = keys.fetches
    clock.now += 10
    await keys.current()
    assert keys.fetches == fetches  # failed refetch not retried before min_refresh
    clock.now += 600
    with pytest.raises(UnavailableError):
        await keys.current()
    server.fail = False
    clock.now += 30
    assert set((await keys.current()).keys) == {"k1"}  # recovers, rediscovering first
    assert server.hits[-2:] == ["discovery", "jwks"]


async def test_unreachable_at_start_is_503(clock: Clock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    keys = JwksKeys(BASE, clock=clock, transport=httpx.MockTransport(refuse))
    with pytest.raises(UnavailableError):
        await keys.current()


async def test_refresh_failure_is_503(server: FakeTokenServer, clock: Clock) -> None:
    keys = provider(server, clock)
    await keys.current()
    server.fail = True
    clock.now += 31
    with pytest.raises(UnavailableError):
        await keys.refresh()


async def test_redirect_not_followed(server: FakeTokenServer, clock: Clock) -> None:
    server.redirect = True
    keys = provider(server, clock)
    with pytest.raises(UnavailableError):
        await keys.current()
    assert server.hits == ["discovery"]


async def test_jwks_uri_must_be_https_or_loopback(clock: Clock) -> None:
    async def discovery(request: Request) -> Response:
        return JSONResponse({"issuer": ISSUER, "jwks_uri": "http://evil.example/jwks"})

    app = Starlette(routes=[Route("/.well-known/openid-configuration", discovery)])
    keys = JwksKeys(BASE, clock=clock, transport=httpx.ASGITransport(app=app))
    with pytest.raises(UnavailableError):
        await keys.current()


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://10.0.0.1"],
)
def test_check_fetch_url_refuses(url: str) -> None:
    with pytest.raises(ConfigurationError):
        check_fetch_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://auth.example.com", "http://127.0.0.1:8080", "http://localhost", "http://[::1]:1"],
)
def test_check_fetch_url_accepts(url: str) -> None:
    assert check_fetch_url(url) == url


def test_parse_jwks_skips_unusable_entries(server_key: PrivateKey) -> None:
    good = {**server_key.public.jwk, "kid": "good"}
    private = {**server_key.public.jwk, "kid": "priv", "d": "AQAB"}
    enc = {**server_key.public.jwk, "kid": "enc", "use": "enc"}
    other_alg = {**server_key.public.jwk, "kid": "ps", "alg": "PS256"}
    no_kid = dict(server_key.public.jwk)
    ec = {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "a", "y": "b"}
    keys = parse_jwks({"keys": [good, private, enc, other_alg, no_kid, ec, "junk"]})
    assert set(keys) == {"good"}


def test_parse_jwks_without_usable_key_fails() -> None:
    with pytest.raises(ValueError, match="no usable"):
        parse_jwks({"keys": []})


async def test_rotation_through_validator(
    server: FakeTokenServer, clock: Clock, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    """A token of a new kid triggers one refresh; tokens of the old key keep working."""
    keys = provider(server, clock)
    validator = Validator(keys, clock=lambda: NOW)
    target = "/iot-connectivity/v1/devices/8901260000000000001"

    async def call(token: str) -> str:
        headers = Caller(rsa_key, token).headers("GET", target)
        parts = request_parts("GET", target, "", list(headers.items()), b"")
        return (await validator.verify(parts)).kid

    old = make_token(server_key, rsa_key, kid="k1")
    assert await call(old) == "k1"
    new_key = generate_private_key(2048)
    server.keys["k2"] = new_key  # rotation: the JWKS lists the previous and the current key
    clock.now += 31
    assert await call(make_token(new_key, rsa_key, kid="k2")) == "k2"
    assert await call(old) == "k1"
    # a kid nobody published: one refetch allowed per interval, then token_invalid
    fetches = keys.fetches
    with pytest.raises(TokenInvalidError):
        await call(make_token(new_key, rsa_key, kid="k9"))
    with pytest.raises(TokenInvalidError):
        await call(make_token(new_key, rsa_key, kid="k8"))
    assert keys.fetches == fetches  # the k2 refresh was < 30 s ago: no refetch at all


def _refreshes(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("taap_jwks_refreshes_total", {"outcome": outcome}) or 0.0


async def test_jwks_fetches_are_counted_for_metrics(server: FakeTokenServer, clock: Clock) -> None:
    ok, failed = _refreshes("ok"), _refreshes("failed")
    keys = provider(server, clock)
    await keys.current()
    await keys.current()  # cached: no fetch, no count
    assert (_refreshes("ok"), _refreshes("failed")) == (ok + 1, failed)
    server.fail = True
    clock.now += 301
    await keys.current()  # the refetch fails; the still-valid keys keep serving
    assert (_refreshes("ok"), _refreshes("failed")) == (ok + 1, failed + 1)
