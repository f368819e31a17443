"""The Redis replay store's epoch rule, with an injected clock: a missing marker or another
Redis identity is a loss; PoPs issued before ``epoch + leeway`` are refused with a
Retry-After during the window; the check and the ``SET NX`` are one script. A real Redis, a
key prefix of each test's own (the losses here are made by deleting or rewriting the marker;
tests/faults/test_redis_state_loss.py flushes, restarts and fails over real servers)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from server_kit import NOW

from taap.core.pop import PopPolicy
from taap.core.replay import EpochRule
from taap.errors import UnavailableError
from taap.stores.redis import RedisReplayStore, connect

pytestmark = pytest.mark.redis

SMALL = PopPolicy(leeway=2, max_age=5, max_ttl=5)  # window 9 s


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    value = f"taap-epoch-{uuid.uuid4().hex}:"
    yield value
    keys = [k async for k in redis_client.scan_iter(match=f"{value}*")]
    if keys:
        await redis_client.delete(*keys)


def _epochs(reason: str) -> float:
    return REGISTRY.get_sample_value("taap_replay_store_epochs_total", {"reason": reason}) or 0.0


async def _refused(store: RedisReplayStore, jti: str, *, iat: int | None, now: float) -> int:
    """The Retry-After of a refusal (fails when the PoP is recorded or seen)."""
    with pytest.raises(UnavailableError) as caught:
        await store.record("c", jti, until=now + 60, now=now, iat=iat)
    assert caught.value.error_code == "unavailable"
    assert caught.value.retry_after is not None
    return caught.value.retry_after


async def test_missing_marker_starts_an_epoch(
    redis_client: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisReplayStore(redis_client, prefix=prefix)
    before = _epochs("missing")
    caplog.set_level(logging.WARNING, logger="taap.stores")
    assert await store.epoch() is None
    # Found at NOW + 0.4: epoch NOW + 1; issued before NOW + 11 → refused, retry in 11 s.
    assert await _refused(store, "old", iat=int(NOW) - 1, now=NOW + 0.4) == 11
    assert await store.epoch() == int(NOW) + 1
    assert not await store.contains("c", "old")  # a refusal records nothing
    assert await _refused(store, "edge", iat=int(NOW) + 10, now=NOW + 5) == 6
    # From epoch + leeway on: recorded once, then a replay as always.
    assert await store.record("c", "fresh", until=NOW + 80, now=NOW + 11, iat=int(NOW) + 11)
    assert not await store.record("c", "fresh", until=NOW + 80, now=NOW + 12, iat=int(NOW) + 11)
    # One loss: one warning and one count, however many PoPs were refused.
    warnings = [r for r in caplog.records if r.name == "taap.stores"]
    assert len(warnings) == 1
    assert "epoch marker is gone" in warnings[0].getMessage()
    assert f"new epoch {int(NOW) + 1}" in warnings[0].getMessage()
    assert _epochs("missing") == before + 1


async def test_other_identity_starts_an_epoch(redis_client: aioredis.Redis, prefix: str) -> None:
    store = RedisReplayStore(redis_client, prefix=prefix)
    await store.adopt(epoch=0)
    assert await store.record("c", "before", until=NOW + 60, now=NOW, iat=int(NOW))
    before = _epochs("identity")
    # What a restart from a snapshot or a failover leaves: a marker written by another Redis.
    await redis_client.hset(store.marker, "identity", "0" * 40 + ":" + "1" * 40)
    assert await _refused(store, "before-2", iat=int(NOW), now=NOW + 3) == 10
    assert await store.epoch() == int(NOW) + 3
    assert _epochs("identity") == before + 1
    # The marker now names this Redis: no second loss.
    assert await store.record("c", "later", until=NOW + 90, now=NOW + 13, iat=int(NOW) + 13)
    assert _epochs("identity") == before + 1


async def test_window_ends(redis_client: aioredis.Redis, prefix: str) -> None:
    store = RedisReplayStore(redis_client, prefix=prefix, policy=SMALL)
    assert store.rule == EpochRule(leeway=2, window=9)
    await _refused(store, "a", iat=int(NOW), now=NOW)  # epoch NOW
    assert await _refused(store, "a", iat=int(NOW) - 3, now=NOW + 8.5) == 1
    assert await store.record("c", "a", until=NOW + 20, now=NOW + 9, iat=int(NOW) + 1)
    # No iat: refused for the whole window, told to come back at its end.
    other = RedisReplayStore(redis_client, prefix=prefix + "x:", policy=SMALL)
    assert await _refused(other, "n", iat=None, now=NOW) == 9
    assert await other.record("c", "n", until=NOW + 20, now=NOW + 9, iat=None)


async def test_script_applies_the_rule_of_core(redis_client: aioredis.Redis, prefix: str) -> None:
    """The Lua copy of the rule refuses exactly what :class:`EpochRule` refuses."""
    store = RedisReplayStore(redis_client, prefix=prefix, policy=SMALL)
    rule, epoch = store.rule, int(NOW)
    await store.adopt(epoch=epoch)
    cases = [
        (iat, epoch + offset)
        for iat in (None, epoch - 20, epoch - 1, epoch, epoch + 1, epoch + 2, epoch + 9)
        for offset in (-1, 0, 0.5, 1.999, 2, 8.999, 9, 30)
    ]
    for n, (iat, now) in enumerate(cases):
        if rule.refuses(epoch=epoch, iat=iat, now=now):
            expected = rule.retry_after(epoch=epoch, iat=iat, now=now)
            assert await _refused(store, f"j{n}", iat=iat, now=now) == expected, (iat, now)
        else:
            assert await store.record("c", f"j{n}", until=now + 60, now=now, iat=iat), (iat, now)
    assert await store.epoch() == epoch  # the identity matched throughout: no new epoch


async def test_loss_during_records_never_lets_a_used_pop_through(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """The marker check and the SET NX are one step: while the store's keys vanish under
    concurrent records of a PoP already used, each record sees either the old state (a
    replay) or the loss (refused), never an empty store with a marker still in place."""
    store = RedisReplayStore(redis_client, prefix=prefix)
    await store.adopt(epoch=0)
    iat = int(NOW)
    assert await store.record("c", "used", until=NOW + 70, now=NOW, iat=iat)
    jti_key = store.key("c", "used")

    async def replay() -> str:
        try:
            return (
                "recorded"
                if await store.record("c", "used", until=NOW + 70, now=NOW, iat=iat)
                else "seen"
            )
        except UnavailableError:
            return "refused"

    async def lose_state() -> None:
        await redis_client.delete(store.marker, jti_key)

    for _ in range(5):
        early = [replay() for _ in range(20)]
        late = [replay() for _ in range(20)]
        outcomes = await asyncio.gather(*early, lose_state(), *late)
        assert "recorded" not in outcomes
        assert await replay() in ("seen", "refused")
        await store.adopt(epoch=0)
        await redis_client.set(jti_key, b"1", px=70_000)


async def test_adopt_and_epoch(redis_client: aioredis.Redis, prefix: str) -> None:
    store = RedisReplayStore(redis_client, prefix=prefix)
    await store.adopt(epoch=1234)
    assert await store.epoch() == 1234
    identity = await redis_client.hget(store.marker, "identity")
    run_id = (await redis_client.info("server"))["run_id"]
    replid = (await redis_client.info("replication"))["master_replid"]
    assert identity == f"{run_id}:{replid}".encode()


async def test_unreachable_redis_adopt_and_epoch_fail_closed() -> None:
    client = connect("redis://127.0.0.1:1/0", timeout=0.5)
    store = RedisReplayStore(client)
    with pytest.raises(UnavailableError):
        await store.adopt(epoch=0)
    with pytest.raises(UnavailableError):
        await store.epoch()
    with pytest.raises(UnavailableError):
        await store.record("c", "j", until=NOW + 60, now=NOW, iat=int(NOW))
    await client.aclose()
