"""Failed-authentication rate limits (TAAP.md A8, SECURITY.md A5)."""

from __future__ import annotations

import pytest
from server_kit import Harness, basic, make_harness

from taap.core import PrivateKey
from taap.stores.ratelimit import Bucket, MemoryRateLimiter, Rate


async def _status(h: Harness, auth: str | None = None, peer: str | None = None) -> tuple[int, str]:
    path, headers, body = h.request("v2", authorization=auth)
    async with h.http(peer) as client:
        r = await client.post(path, headers=headers, content=body)
    return r.status_code, r.headers.get("retry-after", "")


async def test_per_client_limit_then_recovery(harness: Harness) -> None:
    wrong = basic(harness.client_id, "wrong")
    for _ in range(10):
        assert (await _status(harness, wrong))[0] == 401
    status, retry = await _status(harness, wrong)
    assert (status, retry) == (429, "6")
    # the right secret while limited is refused too: a guesser learns nothing
    assert (await _status(harness))[0] == 429
    harness.clock.now += 6
    assert (await _status(harness))[0] == 200


async def test_limit_is_per_client(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key)
    other, secret = await h.registry.create_client(
        name="other", keys=[rsa_key.public], apis=["connectivity"]
    )
    for i in range(10):
        assert (await _status(h, basic(h.client_id, "x"), peer=f"198.51.100.{i}"))[0] == 401
    assert (await _status(h, peer="198.51.100.99"))[0] == 429
    assert (await _status(h, basic(other.client_id, secret), peer="198.51.100.99"))[0] == 200


async def test_per_address_limit(harness: Harness) -> None:
    for i in range(30):
        assert (await _status(harness, basic(f"taap-guess-{i}", "x")))[0] == 401
    status, retry = await _status(harness, basic("taap-guess-x", "x"))
    assert (status, retry) == (429, "2")
    assert (await _status(harness))[0] == 429
    assert (await _status(harness, peer="198.51.100.1"))[0] == 200


async def test_pop_signature_failures_count(harness: Harness, other_key: PrivateKey) -> None:
    for _ in range(10):
        path, headers, body = harness.request("v2", key=other_key)
        async with harness.http() as client:
            r = await client.post(path, headers=headers, content=body)
        assert r.json()["error_code"] == "pop_signature_invalid"
    assert (await _status(harness))[0] == 429


async def test_other_failures_do_not_count(harness: Harness) -> None:
    for _ in range(15):
        path, headers, body = harness.request("v2", names=["uri"])
        async with harness.http() as client:
            r = await client.post(path, headers=headers, content=body)
        assert r.json()["error_code"] == "pop_ehts_insufficient"
    assert harness.levels() == (30.0, 10.0)
    assert (await _status(harness))[0] == 200


async def test_configured_rates(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, rate_client="2/60")
    for _ in range(2):
        assert (await _status(h, basic(h.client_id, "x")))[0] == 401
    assert await _status(h, basic(h.client_id, "x")) == (429, "60")


@pytest.mark.parametrize(
    ("allow", "peer", "xff", "expected"),
    [
        ("", "10.0.0.1", "192.0.2.9", "10.0.0.1"),  # untrusted by default
        ("10.0.0.0/8", "10.0.0.1", "192.0.2.9", "192.0.2.9"),
        ("10.0.0.0/8", "10.0.0.1", "6.6.6.6, 192.0.2.9, 10.0.0.2", "192.0.2.9"),
        ("10.0.0.0/8", "203.0.113.1", "192.0.2.9", "203.0.113.1"),  # peer not a proxy
        ("*", "203.0.113.1", "192.0.2.9", "192.0.2.9"),
    ],
)
async def test_forwarded_for_only_from_trusted_proxies(
    rsa_key: PrivateKey, signing_key: PrivateKey, allow: str, peer: str, xff: str, expected: str
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, forwarded_allow_ips=allow)
    path, headers, body = h.request("v2", authorization=basic("taap-x", "y"))
    headers["X-Forwarded-For"] = xff
    async with h.http(peer) as client:
        r = await client.post(path, headers=headers, content=body)
    assert r.status_code == 401
    assert h.audit_lines[-1]["source"] == expected
    assert h.levels(peer=expected, client_id="taap-x")[0] == 29.0


async def test_memory_limiter_take_is_all_or_nothing() -> None:
    limiter = MemoryRateLimiter()
    a, b = Bucket("a", Rate(1, 10)), Bucket("b", Rate(3, 10))
    assert await limiter.take([a, b], now=0) == 0
    assert await limiter.take([a, b], now=0) == pytest.approx(10)
    assert limiter.level(b, now=0) == 2  # nothing taken from b by the refused take
    assert await limiter.check([b], now=0) == 0
    assert await limiter.check([a], now=5) == pytest.approx(5)
    assert await limiter.take([a], now=10) == 0


async def test_memory_limiter_is_bounded() -> None:
    limiter = MemoryRateLimiter(max_buckets=3)
    for i in range(5):
        await limiter.take([Bucket(f"k{i}", Rate(2, 10))], now=0)
    assert len(limiter._state) == 3
