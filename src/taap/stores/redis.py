"""Redis-backed replay store and failed-auth limiter for several processes or nodes.

Replay (TAAP.md A3 step 7, SECURITY.md §4): one atomic ``SET key 1 NX PX ttl`` per accepted
PoP, the key a BLAKE2 digest of ``(client_id, jti)`` under a prefix; Redis unreachable →
:class:`~taap.errors.UnavailableError` (fail closed, 503), never "not seen".
Rate limits: token buckets updated by one Lua script, so concurrent requests on any node see
and change the same counters atomically (SECURITY.md A5: parallel requests must not beat it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from taap.core.replay import replay_key
from taap.errors import UnavailableError
from taap.stores.ratelimit import Bucket

__all__ = ["DEFAULT_PREFIX", "RedisRateLimiter", "RedisReplayStore", "connect"]

DEFAULT_PREFIX = "taap:"

# KEYS = bucket keys; ARGV = now, cost, then burst and period for each key.
# Returns the wait in seconds as a string ("0" = allowed); Lua numbers would be truncated.
_BUCKET_LUA = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[1 + 2 * i])
  local per = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(state[1])
  local stamp = tonumber(state[2])
  if tokens == nil or stamp == nil then
    tokens = burst
  else
    tokens = math.min(burst, tokens + math.max(0, now - stamp) / per)
  end
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, (1 - tokens) * per)
  end
end
if wait > 0 or cost == 0 then
  return tostring(wait)
end
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[1 + 2 * i])
  local per = tonumber(ARGV[2 + 2 * i])
  redis.call('HSET', key, 'tokens', tostring(levels[i] - cost), 'stamp', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst * per * 1000) + 1000)
end
return '0'
"""


def connect(url: str, *, timeout: float = 1.0) -> aioredis.Redis:
    """A pooled asyncio Redis client with short timeouts (a stalled Redis answers 503 fast)."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
    )
    return client


def _unavailable(what: str, exc: Exception) -> UnavailableError:
    return UnavailableError(log_detail=f"redis {what} failed: {type(exc).__name__}")


class RedisReplayStore:
    """:class:`~taap.core.replay.ReplayStore` on Redis (``SET NX PX``)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = client
        self._prefix = f"{prefix}jti:"

    def key(self, client_id: str, jti: str) -> str:
        """The Redis key holding ``(client_id, jti)``."""
        return self._prefix + replay_key(client_id, jti).hex()

    async def record(self, client_id: str, jti: str, *, until: float, now: float) -> bool:
        """Record ``(client_id, jti)`` until ``until``; False when already recorded.

        Raises:
            UnavailableError: Redis cannot be reached or refused the write.
        """
        ttl_ms = max(1, math.ceil((until - now) * 1000))
        try:
            created = await self._redis.set(self.key(client_id, jti), b"1", nx=True, px=ttl_ms)
        except (RedisError, OSError) as exc:
            raise _unavailable("SET NX", exc) from exc
        return bool(created)

    async def contains(self, client_id: str, jti: str) -> bool:
        """True when ``(client_id, jti)`` is recorded (tests and audits).

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        try:
            return bool(await self._redis.exists(self.key(client_id, jti)))
        except (RedisError, OSError) as exc:
            raise _unavailable("EXISTS", exc) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False


class RedisRateLimiter:
    """:class:`~taap.stores.ratelimit.RateLimiter` on Redis, one Lua script per decision."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = client
        self._prefix = f"{prefix}rl:"
        self._script: Any = client.register_script(_BUCKET_LUA)

    async def _run(self, buckets: Sequence[Bucket], now: float, cost: int) -> float:
        if not buckets:
            return 0.0
        keys = [self._prefix + b.key for b in buckets]
        args: list[str] = [repr(now), str(cost)]
        for bucket in buckets:
            args += [str(bucket.rate.burst), repr(float(bucket.rate.per))]
        try:
            result = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise _unavailable("rate-limit script", exc) from exc
        text = result.decode() if isinstance(result, bytes) else str(result)
        return max(0.0, float(text))

    async def check(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """See :meth:`taap.stores.ratelimit.RateLimiter.check`.

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        return await self._run(buckets, now, 0)

    async def take(self, buckets: Sequence[Bucket], *, now: float) -> float:
        """See :meth:`taap.stores.ratelimit.RateLimiter.take`.

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        return await self._run(buckets, now, 1)

    async def level(self, bucket: Bucket, *, now: float) -> float:
        """Tokens in ``bucket`` at ``now`` (tests).

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        try:
            tokens, stamp = await self._redis.hmget(self._prefix + bucket.key, "tokens", "stamp")
        except (RedisError, OSError) as exc:
            raise _unavailable("HMGET", exc) from exc
        if tokens is None or stamp is None:
            return float(bucket.rate.burst)
        refill = max(0.0, now - float(stamp)) / bucket.rate.per
        return min(float(bucket.rate.burst), float(tokens) + refill)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False
