"""Redis-backed replay store and failed-auth limiter for several processes or nodes.

Replay (docs/pop.md, SECURITY.md §4): one Lua script per accepted PoP checks the store's
epoch marker and does the ``SET key 1 NX PX ttl`` in the same atomic step; the key is a BLAKE2
digest of ``(client_id, jti)`` under a prefix. Redis unreachable →
:class:`~taap.errors.UnavailableError` (fail closed, 503), never "not seen".

Epoch: the marker (``<prefix>epoch``, a hash) holds the identity of the Redis that wrote it —
its ``run_id`` (new at every start) and ``master_replid`` (new at every promotion) — and the
epoch. The script reads the identity itself with ``INFO``, so no identity cached by a client can
be stale: a marker that is gone (a flush, a restart without persistence, a new database) or that
names another identity (a restart from a snapshot, a failover) is a loss. One change is not: the
same process starting a replication history with no predecessor (``master_replid2`` all zeros),
which Redis does when its first replica attaches. On a loss the script sets the epoch to the
caller's clock (whole seconds, rounded up) and, for :class:`~taap.core.replay.EpochRule`'s
window, refuses the PoPs issued before ``epoch + leeway`` with 503 and a ``Retry-After``; the
one call that found the loss logs a warning and counts it
(``taap_replay_store_epochs_total{reason}``).

Rate limits: token buckets updated by one Lua script, so concurrent requests on any node see
and change the same counters atomically (SECURITY.md A5: parallel requests must not beat it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from taap.core.pop import STRICT, PopPolicy
from taap.core.replay import EpochRule, replay_key
from taap.errors import UnavailableError
from taap.stores.ratelimit import Bucket

__all__ = ["DEFAULT_PREFIX", "RedisRateLimiter", "RedisReplayStore", "connect"]

DEFAULT_PREFIX = "taap:"
log = logging.getLogger("taap.stores")

try:
    from prometheus_client import Counter
except ImportError:  # pragma: no cover - the server extra brings both redis and prometheus
    _EPOCHS: Any = None
else:
    # On the default registry, like the guard's counters: the token server's /metrics and the
    # guard's both show it, and with several workers it goes to the multi-process files.
    _EPOCHS = Counter(
        "taap_replay_store_epochs",
        "Losses of the shared replay store's state found (a new epoch), by reason.",
        ["reason"],
    )

# The identity of the Redis running the script, read by the script itself: a client-side copy
# could predate a restart that happened between reading it and running the script.
_IDENTITY_LUA = """
local server = redis.call('INFO', 'server')
local replication = redis.call('INFO', 'replication')
local run_id = string.match(server, 'run_id:(%w+)')
local replid = string.match(replication, 'master_replid:(%w+)')
local replid2 = string.match(replication, 'master_replid2:(%w+)')
if not run_id or not replid or not replid2 then
  return redis.error_reply('taap: INFO shows no run_id or replication ids')
end
local identity = run_id .. ':' .. replid
"""

# KEYS = marker, jti key; ARGV = now, ttl_ms, iat ('' when none), leeway, window.
# Returns {outcome, epoch, loss}: outcome 1 recorded, 0 seen before, -1 refused (not vouched
# for); loss 0 none, 1 marker missing, 2 identity changed (this call set the epoch).
_RECORD_LUA = (
    _IDENTITY_LUA
    + """
local now = tonumber(ARGV[1])
local marker = redis.call('HMGET', KEYS[1], 'identity', 'epoch')
local epoch = tonumber(marker[2])
local loss = 0
if not marker[1] or epoch == nil then
  loss = 1
elseif marker[1] ~= identity then
  if string.match(marker[1], '^(%w+):') == run_id and not string.match(replid2, '[^0]') then
    -- Same process, new replication history with no predecessor (its first replica, or its
    -- backlog dropped after repl-backlog-ttl): nothing was lost.
    redis.call('HSET', KEYS[1], 'identity', identity)
  else
    loss = 2
  end
end
if loss > 0 then
  epoch = math.ceil(now)
  redis.call('HSET', KEYS[1], 'identity', identity, 'epoch', tostring(epoch))
end
if now < epoch + tonumber(ARGV[5]) then
  local iat = tonumber(ARGV[3])
  if iat == nil or iat < epoch + tonumber(ARGV[4]) then
    return {-1, epoch, loss}
  end
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[2])) then
  return {1, epoch, loss}
end
return {0, epoch, loss}
"""
)

# KEYS = marker; ARGV = epoch. Returns the identity written.
_ADOPT_LUA = (
    _IDENTITY_LUA
    + """
redis.call('HSET', KEYS[1], 'identity', identity, 'epoch', ARGV[1])
return identity
"""
)
_LOSS_REASONS = {1: "missing", 2: "identity"}
_LOSS_TEXT = {
    1: "the epoch marker is gone (a flush, a restart without persistence, or a new database)",
    2: "the Redis identity changed (a restart or a failover)",
}

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
    """:class:`~taap.core.replay.ReplayStore` on Redis: the epoch check and ``SET NX PX`` in
    one script. ``policy`` is the PoP policy of the servers and guards sharing the store (its
    leeway and caps give the :class:`~taap.core.replay.EpochRule`)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        policy: PopPolicy = STRICT,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}jti:"
        self.marker = f"{prefix}epoch"
        self.rule = EpochRule.for_policy(policy)
        self._record: Any = client.register_script(_RECORD_LUA)
        self._adopt: Any = client.register_script(_ADOPT_LUA)

    def key(self, client_id: str, jti: str) -> str:
        """The Redis key holding ``(client_id, jti)``."""
        return self._prefix + replay_key(client_id, jti).hex()

    async def record(
        self, client_id: str, jti: str, *, until: float, now: float, iat: int | None = None
    ) -> bool:
        """Record ``(client_id, jti)`` until ``until``; False when already recorded.

        Raises:
            UnavailableError: Redis cannot be reached or refused the write; or the store lost
                its state and this PoP (``iat``) was issued before it could vouch for it
                (``retry_after``: seconds until a fresh PoP passes).
        """
        ttl_ms = max(1, math.ceil((until - now) * 1000))
        rule = self.rule
        args = [repr(float(now)), str(ttl_ms), "" if iat is None else str(iat)]
        args += [str(rule.leeway), str(rule.window)]
        try:
            reply = await self._record(keys=[self.marker, self.key(client_id, jti)], args=args)
            outcome, epoch, loss = (int(part) for part in reply)
        except (RedisError, OSError) as exc:
            raise _unavailable("replay script", exc) from exc
        except (TypeError, ValueError) as exc:
            raise _unavailable("replay script reply", exc) from exc
        if loss:
            _report_loss(loss, epoch, rule)
        if outcome < 0:
            raise UnavailableError(
                "the replay store lost its state; retry with a new PoP",
                log_detail=f"PoP issued at {iat} is before replay store epoch {epoch} + leeway",
                retry_after=rule.retry_after(epoch=epoch, iat=iat, now=now),
            )
        return outcome == 1

    async def adopt(self, *, epoch: int) -> None:
        """Write the marker for the Redis now serving, with ``epoch``: PoPs issued from
        ``epoch + leeway`` on pass, and none is refused from ``epoch + window`` on. Only for a
        database known never to have held a record of a PoP that is still valid (tests; a first
        deployment that must not wait): used on a store that lost records, it lets their PoPs
        through again.

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        try:
            await self._adopt(keys=[self.marker], args=[str(int(epoch))])
        except (RedisError, OSError) as exc:
            raise _unavailable("epoch marker", exc) from exc

    async def epoch(self) -> int | None:
        """The epoch of the marker (None: no marker yet); for operators and tests.

        Raises:
            UnavailableError: Redis cannot be reached.
        """
        try:
            value = await self._redis.hget(self.marker, "epoch")
        except (RedisError, OSError) as exc:
            raise _unavailable("HGET", exc) from exc
        return None if value is None else int(value)

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


def _report_loss(loss: int, epoch: int, rule: EpochRule) -> None:
    # Only the one script run that found the loss reports it, whatever the number of processes.
    log.warning(
        "replay store lost its state: %s; new epoch %d: PoPs issued before %d are refused "
        "with 503 until %d",
        _LOSS_TEXT.get(loss, "unknown"),
        epoch,
        epoch + rule.leeway,
        epoch + rule.window,
    )
    if _EPOCHS is not None:
        _EPOCHS.labels(_LOSS_REASONS.get(loss, "unknown")).inc()


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
