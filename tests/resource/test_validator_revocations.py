"""Validator.verify with a revocation watcher (A7 step "revocation state"): where the check sits
in the order, what each kind of row refuses, fail-closed, and that a refusal records nothing.

The log is in memory and the clock injected; the same cases over real HTTP (a feed served by
uvicorn, the token server's processes) are in tests/revocation/.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from resource_kit import ISSUER, KID, NOW, Caller, make_token

from taap.core import MemoryReplayStore, PrivateKey, request_parts, split_target
from taap.core.request import RequestParts
from taap.core.revocation import RevocationEntry, RevocationKind
from taap.errors import (
    NotSubscribedError,
    PopMissingError,
    TokenInvalidError,
    TokenRevokedError,
    UnavailableError,
)
from taap.resource import StaticKeys, Validator
from taap.resource.revocations import RevocationWatcher

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"
SMS_BODY = b'{"to": "+14255550100", "text": "hi"}'
CLIENT = "taap-client-a"


class Log:
    """The registry's revocation log as a watcher reads it; ``down`` makes every read fail."""

    def __init__(self) -> None:
        self.rows: list[RevocationEntry] = []
        self.down = False
        self.reads = 0

    def add(self, kind: RevocationKind, **fields: object) -> None:
        self.rows.append(
            RevocationEntry(
                seq=len(self.rows) + 1,
                kind=kind,
                client_id=str(fields.pop("client_id", CLIENT)),
                expires_at=int(NOW) + 86_400,
                **fields,  # type: ignore[arg-type]
            )
        )

    async def __call__(self, after: int) -> Sequence[RevocationEntry]:
        self.reads += 1
        if self.down:
            raise UnavailableError(log_detail="log down")
        return [row for row in self.rows if row.seq > after]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def parts(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> RequestParts:
    path, query = split_target(target)
    return request_parts(method, path, query, list(headers.items()), body)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replay() -> MemoryReplayStore:
    return MemoryReplayStore()


@pytest.fixture
def validator(
    server_key: PrivateKey, replay: MemoryReplayStore, log: Log, clock: Clock
) -> Validator:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    watcher = RevocationWatcher(log, max_age=5, interval=1, clock=clock)
    return Validator(keys, replay=replay, clock=clock, revocations=watcher)


def token_jti(caller: Caller) -> str:
    from taap.core.jws import parse_compact

    jti = parse_compact(caller.token, max_bytes=8192, max_header_bytes=1024).payload["jti"]
    assert isinstance(jti, str)
    return jti


async def get_device(validator: Validator, caller: Caller, jti: str) -> None:
    headers = caller.headers("GET", DEVICE, jti=jti, now=validator.clock())
    await validator.verify(parts("GET", DEVICE, headers))


async def test_a_revoked_token_is_refused_and_nothing_is_recorded(
    validator: Validator, caller: Caller, log: Log, clock: Clock, replay: MemoryReplayStore
) -> None:
    await get_device(validator, caller, "before")
    log.add("token", jti=token_jti(caller))
    clock.now += 5.01  # a change older than max_age is always seen
    with pytest.raises(TokenRevokedError) as refused:
        await get_device(validator, caller, "after")
    assert (refused.value.status_code, refused.value.error_code) == (401, "token_revoked")
    assert not replay.contains(CLIENT, "after", now=NOW + 6)
    assert replay.contains(CLIENT, "before", now=NOW + 6)


async def test_the_revocation_check_comes_after_the_token_and_before_the_pop(
    validator: Validator, caller: Caller, log: Log, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    log.add("token", jti=token_jti(caller))
    no_pop = {"Authorization": f"Bearer {caller.token}", "Content-Type": "application/json"}
    with pytest.raises(TokenRevokedError):
        await validator.verify(parts("GET", DEVICE, no_pop))  # not pop_missing
    forged = make_token(server_key, rsa_key, issuer="https://elsewhere.test/oauth2/v1")
    with pytest.raises(TokenInvalidError):
        await validator.verify(parts("GET", DEVICE, {"Authorization": f"Bearer {forged}"}))
    other = Caller(rsa_key, make_token(server_key, rsa_key))
    other_headers = {"Authorization": f"Bearer {other.token}"}
    with pytest.raises(PopMissingError):  # a live token goes on to the PoP
        await validator.verify(parts("GET", DEVICE, other_headers))


async def test_a_client_cutoff_refuses_older_tokens_only(
    validator: Validator, caller: Caller, log: Log, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    log.add("client", not_before=int(NOW) + 1)
    with pytest.raises(TokenRevokedError):
        await get_device(validator, caller, "old")
    newer = Caller(rsa_key, make_token(server_key, rsa_key, now=NOW + 1))
    await get_device(validator, newer, "new")
    someone_else = Caller(rsa_key, make_token(server_key, rsa_key, client_id="taap-client-b"))
    await get_device(validator, someone_else, "other")


async def test_a_product_cutoff_refuses_that_product_only(
    validator: Validator,
    caller: Caller,
    log: Log,
    replay: MemoryReplayStore,
    server_key: PrivateKey,
    rsa_key: PrivateKey,
) -> None:
    log.add("product", api_id="connectivity", not_before=int(NOW) + 1)
    with pytest.raises(NotSubscribedError) as refused:
        await get_device(validator, caller, "device")
    assert (refused.value.status_code, refused.value.error_code) == (403, "not_subscribed")
    assert not replay.contains(CLIENT, "device", now=NOW)
    headers = caller.headers("POST", SMS, SMS_BODY, jti="sms")
    principal = await validator.verify(parts("POST", SMS, headers, SMS_BODY))
    assert principal.product == "sms-notification"
    resubscribed = Caller(rsa_key, make_token(server_key, rsa_key, now=NOW + 1))
    await get_device(validator, resubscribed, "device-new-token")


async def test_a_stale_state_fails_closed_and_recovers(
    validator: Validator, caller: Caller, log: Log, clock: Clock, replay: MemoryReplayStore
) -> None:
    await get_device(validator, caller, "first")
    log.down = True
    clock.now += 3  # past the interval, within max_age: served, a refresh is attempted
    await get_device(validator, caller, "second")
    clock.now += 2.5
    with pytest.raises(UnavailableError) as refused:
        await get_device(validator, caller, "third")
    assert refused.value.status_code == 503
    assert refused.value.wire_headers().get("Retry-After") == "1"
    assert not replay.contains(CLIENT, "third", now=clock.now)
    log.down = False
    await get_device(validator, caller, "third")


async def test_a_fresh_state_is_read_without_a_fetch(
    validator: Validator, caller: Caller, log: Log, clock: Clock
) -> None:
    for n in range(20):
        await get_device(validator, caller, f"call-{n}")
        clock.now += 0.04
    assert log.reads == 1  # the first request's fetch; 0.8 s later still within the interval


async def test_without_a_watcher_nothing_is_checked(server_key: PrivateKey, caller: Caller) -> None:
    validator = Validator(StaticKeys({KID: server_key.public}, issuer=ISSUER), clock=lambda: NOW)
    assert validator.revocations is None
    await get_device(validator, caller, "unchecked")
