"""The epoch rule's arithmetic: after a shared replay store lost its state, which PoPs it
refuses, for how long, and the Retry-After it gives (the Redis script applies the same rule;
tests/server/test_redis_stores.py compares the two)."""

from __future__ import annotations

import itertools

import pytest

from taap.core.pop import JAVA_COMPAT, STRICT, PopPolicy
from taap.core.replay import EpochRule, MemoryReplayStore, issued_at


def test_defaults_are_the_protocol_window() -> None:
    # max(max age 60, lifetime cap 120) + leeway 10.
    assert EpochRule.for_policy(STRICT) == EpochRule(leeway=10, window=130)
    assert EpochRule() == EpochRule.for_policy()


@pytest.mark.parametrize(
    ("leeway", "max_age", "max_ttl", "window"),
    [
        (10, 60, 120, 130),  # A8 defaults
        (0, 60, 120, 120),
        (2, 5, 5, 9),  # caps equal: stretched to min + 2 * leeway (5 + 4 > 5 + 2)
        (10, 60, 65, 80),  # caps within one leeway: 60 + 20 > 65 + 10
        (10, 300, 120, 310),
        (1, 1, 1, 3),
    ],
)
def test_window_for_policy(leeway: int, max_age: int, max_ttl: int, window: int) -> None:
    policy = PopPolicy(leeway=leeway, max_age=max_age, max_ttl=max_ttl)
    assert EpochRule.for_policy(policy) == EpochRule(leeway=leeway, window=window)


def test_fractional_settings_round_up() -> None:
    rule = EpochRule.for_policy(PopPolicy(leeway=1.5, max_age=10.2, max_ttl=10))
    assert rule == EpochRule(leeway=2, window=max(11 + 2, 10 + 4))


def test_epoch_is_rounded_up() -> None:
    # Every lost record was written before the loss was found, so rounding up is safe.
    assert EpochRule.epoch_at(100.0) == 100
    assert EpochRule.epoch_at(100.3) == 101


def test_refusals_and_retry_after() -> None:
    rule = EpochRule(leeway=10, window=130)
    epoch = 1000
    # Issued before epoch + leeway: possibly seen before the loss.
    assert rule.refuses(epoch=epoch, iat=1009, now=1000.5)
    assert rule.retry_after(epoch=epoch, iat=1009, now=1000.5) == 10  # ceil(1010 - 1000.5)
    assert rule.retry_after(epoch=epoch, iat=900, now=1009.9) == 1
    # From epoch + leeway on, a PoP cannot have been used before the loss.
    assert not rule.refuses(epoch=epoch, iat=1010, now=1010)
    # The window ends: nothing issued before the epoch can pass the time checks any more.
    assert rule.refuses(epoch=epoch, iat=1009, now=1129.9)
    assert not rule.refuses(epoch=epoch, iat=1009, now=1130)
    # No iat (java-compat): refused for the whole window, and told to wait for its end.
    assert rule.refuses(epoch=epoch, iat=None, now=1100)
    assert rule.retry_after(epoch=epoch, iat=None, now=1100) == 30
    assert not rule.refuses(epoch=epoch, iat=None, now=1130)
    # A clock behind the epoch changes nothing.
    assert rule.refuses(epoch=epoch, iat=990, now=990)


def _passes_time_checks(policy: PopPolicy, iat: int, exp: int, now: int) -> bool:
    # A3 step 4 for strict and lenient (core.pop applies it; restated to enumerate cases).
    leeway = policy.leeway
    return (
        exp - iat <= policy.max_ttl
        and now <= exp + leeway
        and iat <= now + leeway
        and now - iat <= policy.max_age + leeway
    )


@pytest.mark.parametrize(
    "policy",
    [
        PopPolicy(leeway=2, max_age=5, max_ttl=5),
        PopPolicy(leeway=2, max_age=4, max_ttl=9),
        PopPolicy(leeway=3, max_age=8, max_ttl=6),
        PopPolicy(leeway=0, max_age=3, max_ttl=3),
    ],
    ids=lambda p: f"leeway{p.leeway}-age{p.max_age}-ttl{p.max_ttl}",
)
def test_no_pop_used_before_the_loss_is_accepted_after_it(policy: PopPolicy) -> None:
    """Every PoP accepted at some time before the loss is refused at every later time at which
    it would still pass the time checks: the rule is never too short, for small caps taken
    exhaustively (the bound does not depend on the scale)."""
    rule = EpochRule.for_policy(policy)
    found = 7  # the loss is found at 7.5 s: epoch 8
    epoch = EpochRule.epoch_at(found + 0.5)
    horizon = epoch + rule.window + policy.max_ttl + 2 * policy.leeway + 2
    span = range(-policy.max_ttl - policy.max_age - 3 * policy.leeway, horizon)
    used_at = range(0, found + 1)  # before the loss
    for used, iat, ttl in itertools.product(used_at, span, range(1, policy.max_ttl + 1)):
        exp = iat + ttl
        if not _passes_time_checks(policy, iat, exp, used):
            continue
        for now in range(found + 1, horizon):
            if _passes_time_checks(policy, iat, exp, now):
                assert rule.refuses(epoch=epoch, iat=iat, now=now), (used, iat, exp, now)


def test_fresh_pops_pass_right_after_epoch_plus_leeway() -> None:
    rule = EpochRule.for_policy(STRICT)
    for now in range(1010, 1200):
        assert not rule.refuses(epoch=1000, iat=now, now=now)


def test_issued_at_takes_integers_only() -> None:
    assert issued_at({"iat": 5}) == 5
    assert issued_at({}) is None
    assert issued_at({"iat": True}) is None
    assert issued_at({"iat": 5.0}) is None


async def test_memory_store_takes_iat_and_never_refuses_for_it() -> None:
    # One process: its store ends with it, so there is no loss to detect while it runs.
    store = MemoryReplayStore(capacity=4)
    assert await store.record("c", "j", until=100, now=0, iat=-50)
    assert not await store.record("c", "j", until=100, now=1, iat=-50)
    assert store.record_sync("c", "k", until=100, now=1, iat=None)


def test_java_compat_window_uses_its_nominal_caps() -> None:
    # java-compat applies no caps (SECURITY.md residual risks): the window is computed from
    # the configured values all the same, and PoPs without iat wait for its end.
    rule = EpochRule.for_policy(JAVA_COMPAT)
    assert rule == EpochRule(leeway=10, window=130)
    assert rule.retry_after(epoch=0, iat=None, now=0) == 130


def test_rule_rejects_a_window_shorter_than_the_leeway() -> None:
    with pytest.raises(ValueError, match="leeway <= window"):
        EpochRule(leeway=10, window=5)
    with pytest.raises(ValueError, match="leeway <= window"):
        EpochRule(leeway=-1, window=5)
