"""The verified-token memo: same answers as a full verification, and rotation still bites."""

from __future__ import annotations

import pytest
from resource_kit import ISSUER, KID, NOW, Caller, make_token

from taap.core import PrivateKey, request_parts
from taap.errors import TokenInvalidError
from taap.resource import GuardSettings, KeySet, Validator
from taap.resource.token_cache import VerifiedTokens

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


class MutableKeys:
    def __init__(self, keys: dict[str, object], issuer: str = ISSUER) -> None:
        self.set = KeySet(keys, issuer)  # type: ignore[arg-type]

    async def current(self) -> KeySet:
        return self.set

    async def refresh(self) -> KeySet:
        return self.set


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def call(validator: Validator, caller: Caller, now: float) -> str:
    headers = caller.headers("GET", DEVICE, now=now)
    parts = request_parts("GET", DEVICE, "", list(headers.items()), b"")
    return (await validator.verify(parts)).client_id


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_second_call_is_a_hit(
    server_key: PrivateKey, caller: Caller, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taap.resource.validator as module

    calls: list[str] = []
    real = module.verify_access_token

    def counting(token: str, **kw: object) -> object:
        calls.append(token)
        return real(token, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "verify_access_token", counting)
    validator = Validator(MutableKeys({KID: server_key.public}), clock=clock)
    await call(validator, caller, clock.now)
    await call(validator, caller, clock.now)
    assert len(calls) == 1
    assert len(validator.tokens) == 1


async def test_expiry_rechecked_on_hit(
    server_key: PrivateKey, rsa_key: PrivateKey, clock: Clock
) -> None:
    caller = Caller(rsa_key, make_token(server_key, rsa_key, ttl=60))
    validator = Validator(MutableKeys({KID: server_key.public}), clock=clock)
    await call(validator, caller, clock.now)
    clock.now += 70  # exp + leeway: still fine
    await call(validator, caller, clock.now)
    clock.now += 1
    with pytest.raises(TokenInvalidError):
        await call(validator, caller, clock.now)


async def test_key_removed_from_jwks_stops_hits(
    server_key: PrivateKey, other_key: PrivateKey, caller: Caller, clock: Clock
) -> None:
    keys = MutableKeys({KID: server_key.public})
    validator = Validator(keys, clock=clock)
    await call(validator, caller, clock.now)
    keys.set = KeySet({"new": other_key.public}, ISSUER)
    with pytest.raises(TokenInvalidError):
        await call(validator, caller, clock.now)


async def test_same_kid_other_key_stops_hits(
    server_key: PrivateKey, other_key: PrivateKey, caller: Caller, clock: Clock
) -> None:
    keys = MutableKeys({KID: server_key.public})
    validator = Validator(keys, clock=clock)
    await call(validator, caller, clock.now)
    keys.set = KeySet({KID: other_key.public}, ISSUER)
    with pytest.raises(TokenInvalidError) as info:
        await call(validator, caller, clock.now)
    assert info.value.log_detail == "bad signature"


async def test_issuer_change_stops_hits(
    server_key: PrivateKey, caller: Caller, clock: Clock
) -> None:
    keys = MutableKeys({KID: server_key.public})
    validator = Validator(keys, clock=clock)
    await call(validator, caller, clock.now)
    keys.set = KeySet({KID: server_key.public}, ISSUER + "x")
    with pytest.raises(TokenInvalidError) as info:
        await call(validator, caller, clock.now)
    assert info.value.log_detail == "wrong issuer"


async def test_disabled(server_key: PrivateKey, caller: Caller, clock: Clock) -> None:
    settings = GuardSettings(token_cache=0)
    validator = Validator(MutableKeys({KID: server_key.public}), settings=settings, clock=clock)
    await call(validator, caller, clock.now)
    assert len(validator.tokens) == 0


def test_capacity_bound(server_key: PrivateKey, rsa_key: PrivateKey) -> None:
    from taap.core import verify_access_token

    memo = VerifiedTokens(2)
    for n in range(5):
        token = make_token(server_key, rsa_key, client_id=f"c{n}")
        verified = verify_access_token(token, keys={KID: server_key.public}, issuer=ISSUER, now=NOW)
        memo.put(token, verified, key=server_key.public, issuer=ISSUER)
        assert len(memo) <= 2
