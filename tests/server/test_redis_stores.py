"""Redis replay store and limiter against a real Redis (several processes/nodes share them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from server_kit import NOW, make_harness

from taap.core import PrivateKey
from taap.errors import UnavailableError
from taap.stores.ratelimit import Bucket, Rate
from taap.stores.redis import RedisRateLimiter, RedisReplayStore, connect

pytestmark = pytest.mark.redis

DOWN_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    value = f"taap-test-{uuid.uuid4().hex}:"
    # A brand-new prefix has no epoch marker yet, which a store must read as a loss: these
    # tests are about the store in service, so it is marked as serving since long ago.
    await RedisReplayStore(redis_client, prefix=value).adopt(epoch=0)
    yield value
    keys = [k async for k in redis_client.scan_iter(match=f"{value}*")]
    if keys:
        await redis_client.delete(*keys)


async def test_replay_set_nx_with_ttl(redis_client: aioredis.Redis, prefix: str) -> None:
    store = RedisReplayStore(redis_client, prefix=prefix)
    assert await store.record("c1", "j1", until=NOW + 70, now=NOW)
    assert not await store.record("c1", "j1", until=NOW + 70, now=NOW)
    assert await store.record("c2", "j1", until=NOW + 70, now=NOW)  # per client
    assert await store.contains("c1", "j1")
    ttl = await redis_client.pttl(store.key("c1", "j1"))
    assert 60_000 < ttl <= 70_000
    assert await store.ping()


async def test_replay_concurrent_records_only_one_wins(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    stores = [RedisReplayStore(redis_client, prefix=prefix) for _ in range(4)]
    results = await asyncio.gather(
        *(s.record("c", "same", until=NOW + 60, now=NOW) for s in stores for _ in range(10))
    )
    assert results.count(True) == 1


async def test_limiter_buckets(redis_client: aioredis.Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=prefix)
    a, b = Bucket("a", Rate(2, 10)), Bucket("b", Rate(5, 10))
    assert await limiter.take([a, b], now=NOW) == 0
    assert await limiter.take([a, b], now=NOW) == 0
    assert await limiter.take([a, b], now=NOW) == pytest.approx(10)
    assert await limiter.level(b, now=NOW) == pytest.approx(3)  # all or nothing
    assert await limiter.check([a], now=NOW + 5) == pytest.approx(5)
    assert await limiter.check([b], now=NOW) == 0
    assert await limiter.take([a], now=NOW + 10) == 0
    assert await limiter.ping()


async def test_limiter_is_atomic_under_concurrency(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    limiters = [RedisRateLimiter(redis_client, prefix=prefix) for _ in range(5)]
    bucket = Bucket("hot", Rate(10, 60))
    waits = await asyncio.gather(
        *(lim.take([bucket], now=NOW) for lim in limiters for _ in range(20))
    )
    assert sum(1 for w in waits if w == 0) == 10


async def test_unreachable_redis_fails_closed() -> None:
    client = connect(DOWN_URL, timeout=0.5)
    store, limiter = RedisReplayStore(client), RedisRateLimiter(client)
    with pytest.raises(UnavailableError):
        await store.record("c", "j", until=NOW + 60, now=NOW)
    with pytest.raises(UnavailableError):
        await limiter.take([Bucket("x", Rate(1, 1))], now=NOW)
    with pytest.raises(UnavailableError):
        await limiter.check([Bucket("x", Rate(1, 1))], now=NOW)
    assert not await store.ping()
    assert not await limiter.ping()
    await client.aclose()


async def test_two_nodes_share_replay_and_limits(
    redis_client: aioredis.Redis,
    prefix: str,
    rsa_key: PrivateKey,
    signing_key: PrivateKey,
) -> None:
    node1 = await make_harness(
        rsa_key,
        signing_key=signing_key,
        replay=RedisReplayStore(redis_client, prefix=prefix),
        limiter=RedisRateLimiter(redis_client, prefix=prefix),
    )
    # node 2: same registry content, its own app and store objects, the same Redis
    node2 = await make_harness(
        rsa_key,
        signing_key=signing_key,
        registry=node1.registry,
        replay=RedisReplayStore(redis_client, prefix=prefix),
        limiter=RedisRateLimiter(redis_client, prefix=prefix),
    )
    node2.client_id, node2.secret = node1.client_id, node1.secret
    path, headers, body = node1.request("v2")
    async with node1.http() as c1, node2.http() as c2:
        first = await c1.post(path, headers=headers, content=body)
        second = await c2.post(path, headers=headers, content=body)
        assert first.status_code == 200, first.text
        assert second.json()["error_code"] == "pop_replayed"
        wrong = {**headers, "Authorization": node1.auth(secret="wrong")}
        for client in [c1, c2] * 5:
            r = await client.post(path, headers=wrong, content=body)
            assert r.status_code == 401
        _, fresh, _ = node2.request("v2")
        limited = await c2.post(path, headers=fresh, content=body)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


async def test_token_endpoint_503_when_redis_is_down(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    client = connect(DOWN_URL, timeout=0.5)
    h = await make_harness(
        rsa_key,
        signing_key=signing_key,
        replay=RedisReplayStore(client),
        limiter=RedisRateLimiter(client),
    )
    response = await h.post("v2")
    assert response.status_code == 503
    assert response.json()["error_code"] == "unavailable"
    assert response.headers["retry-after"] == "1"
    assert "eyJ" not in response.text
    async with h.http() as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert "replay_store" in ready.json()["error_description"]
    await client.aclose()
