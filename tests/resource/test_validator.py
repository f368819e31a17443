"""Validator.verify with static keys and a fixed clock: the A7 order and every A6 answer."""

from __future__ import annotations

import pytest
from resource_kit import ISSUER, KID, NOW, Caller, make_token

from taap.core import MemoryReplayStore, PrivateKey, issue_id_token, request_parts, split_target
from taap.core.request import RequestParts
from taap.errors import (
    NotSubscribedError,
    PopCoverageError,
    PopDigestError,
    PopExpiredError,
    PopMissingError,
    PopReplayedError,
    PopSignatureError,
    RequestMalformedError,
    TaapError,
    TokenInvalidError,
    UnavailableError,
)
from taap.resource import GuardSettings, StaticKeys, Validator, bearer_token

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def parts(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> RequestParts:
    path, query = split_target(target)
    return request_parts(method, path, query, list(headers.items()), body)


@pytest.fixture
def replay() -> MemoryReplayStore:
    return MemoryReplayStore()


@pytest.fixture
def validator(server_key: PrivateKey, replay: MemoryReplayStore) -> Validator:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    return Validator(keys, replay=replay, clock=lambda: NOW)


async def test_valid_get_gives_principal(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", DEVICE, jti="jti-1")
    principal = await validator.verify(parts("GET", DEVICE, headers))
    assert principal.client_id == "taap-client-a"
    assert principal.product == "connectivity"
    assert principal.pop_jti == "jti-1"
    assert principal.kid == KID
    assert principal.apis == ("connectivity", "sms-notification")
    assert principal.claims["iss"] == ISSUER


async def test_valid_post_with_body(validator: Validator, caller: Caller) -> None:
    body = b'{"to": "+14255550100", "text": "hi"}'
    headers = caller.headers("POST", "/sms/v1/messages", body)
    principal = await validator.verify(parts("POST", "/sms/v1/messages", headers, body))
    assert principal.product == "sms-notification"


async def test_replay_refused_second_time(
    validator: Validator, caller: Caller, replay: MemoryReplayStore
) -> None:
    headers = caller.headers("GET", DEVICE, jti="once")
    await validator.verify(parts("GET", DEVICE, headers))
    assert replay.contains("taap-client-a", "once", now=NOW)
    with pytest.raises(PopReplayedError):
        await validator.verify(parts("GET", DEVICE, headers))


@pytest.mark.parametrize(
    ("authorization", "why"),
    [(None, "missing"), ("Basic abc", "scheme"), ("Bearer", "empty"), ("Bearer a b", "space")],
)
def test_bearer_token_refusals(authorization: str | None, why: str) -> None:
    with pytest.raises(TokenInvalidError):
        bearer_token(authorization)


def test_bearer_scheme_case_insensitive() -> None:
    assert bearer_token("bEaReR abc.def.ghi") == "abc.def.ghi"


async def test_no_authorization_is_token_invalid(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", DEVICE)
    del headers["Authorization"]
    with pytest.raises(TokenInvalidError) as info:
        await validator.verify(parts("GET", DEVICE, headers))
    assert info.value.status_code == 401


async def test_token_checked_before_pop(validator: Validator, caller: Caller) -> None:
    # A7 order: a bad token answers token_invalid even when the PoP is missing too.
    headers = {"Authorization": "Bearer not-a-jwt", "Content-Type": "application/json"}
    with pytest.raises(TokenInvalidError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_pop_missing(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", DEVICE)
    del headers["X-Authorization"]
    with pytest.raises(PopMissingError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_id_token_refused(
    validator: Validator, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    id_token = issue_id_token(
        key=server_key, kid=KID, issuer=ISSUER, client_id="taap-client-a", now=NOW
    )
    headers = Caller(rsa_key, id_token).headers("GET", DEVICE)
    with pytest.raises(TokenInvalidError) as info:
        await validator.verify(parts("GET", DEVICE, headers))
    assert "typ" in (info.value.log_detail or "")


async def test_wrong_issuer(
    validator: Validator, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    token = make_token(server_key, rsa_key, issuer=ISSUER + "/")
    headers = Caller(rsa_key, token).headers("GET", DEVICE)
    with pytest.raises(TokenInvalidError) as info:
        await validator.verify(parts("GET", DEVICE, headers))
    assert info.value.log_detail == "wrong issuer"


async def test_token_signed_by_another_key(
    validator: Validator, other_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    token = make_token(other_key, rsa_key)
    headers = Caller(rsa_key, token).headers("GET", DEVICE)
    with pytest.raises(TokenInvalidError) as info:
        await validator.verify(parts("GET", DEVICE, headers))
    assert info.value.log_detail == "bad signature"


async def test_unknown_kid_static(
    validator: Validator, server_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    token = make_token(server_key, rsa_key, kid="other")
    headers = Caller(rsa_key, token).headers("GET", DEVICE)
    with pytest.raises(TokenInvalidError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_expired_token_with_leeway(
    server_key: PrivateKey, rsa_key: PrivateKey, replay: MemoryReplayStore
) -> None:
    token = make_token(server_key, rsa_key, now=NOW - 3600, ttl=3600)  # exp == NOW
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    inside = Validator(keys, replay=replay, clock=lambda: NOW + 10)
    headers = Caller(rsa_key, token).headers("GET", DEVICE, now=NOW + 10)
    await inside.verify(parts("GET", DEVICE, headers))
    outside = Validator(keys, replay=replay, clock=lambda: NOW + 11)
    headers = Caller(rsa_key, token).headers("GET", DEVICE, now=NOW + 11)
    with pytest.raises(TokenInvalidError) as info:
        await outside.verify(parts("GET", DEVICE, headers))
    assert info.value.log_detail == "expired"


async def test_pop_by_another_key_than_cnf(
    validator: Validator, caller: Caller, other_key: PrivateKey
) -> None:
    # The token binds rsa_key; a PoP signed by anyone else fails at the signature step.
    thief = Caller(other_key, caller.token)
    headers = thief.headers("GET", DEVICE)
    with pytest.raises(PopSignatureError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_pop_not_signing_authorization(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", DEVICE, names=["Content-Type", "uri", "http-method"])
    with pytest.raises(PopCoverageError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_lenient_policy_accepts_partial_coverage(
    server_key: PrivateKey, caller: Caller
) -> None:
    from taap.core import LENIENT

    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    lenient = Validator(keys, settings=GuardSettings(policy=LENIENT), clock=lambda: NOW)
    headers = caller.headers("GET", DEVICE, names=["Authorization", "uri"])
    assert (await lenient.verify(parts("GET", DEVICE, headers))).product == "connectivity"


async def test_pop_for_another_token_is_refused(
    validator: Validator, caller: Caller, server_key: PrivateKey
) -> None:
    # Same client key, a second token: the PoP signed the first token's Authorization value.
    second = make_token(server_key, caller.key, apis=("connectivity",))
    headers = caller.headers("GET", DEVICE)
    headers["Authorization"] = f"Bearer {second}"
    with pytest.raises(PopDigestError):
        await validator.verify(parts("GET", DEVICE, headers))


async def test_pop_expired(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", DEVICE, now=NOW - 71)
    with pytest.raises(PopExpiredError):
        await validator.verify(parts("GET", DEVICE, headers))


@pytest.mark.parametrize(
    ("signed", "sent"),
    [
        (("GET", DEVICE), ("GET", DEVICE.replace("0001", "0002"))),
        (("GET", DEVICE + "?a=1"), ("GET", DEVICE + "?a=2")),
        (("GET", DEVICE), ("DELETE", DEVICE)),
    ],
    ids=["path", "query", "method"],
)
async def test_request_tamper_is_edts_mismatch(
    validator: Validator, caller: Caller, signed: tuple[str, str], sent: tuple[str, str]
) -> None:
    headers = caller.headers(*signed)
    with pytest.raises(PopDigestError):
        await validator.verify(parts(*sent, headers))


async def test_body_tamper(validator: Validator, caller: Caller) -> None:
    body = b'{"to": "+14255550100", "text": "hi"}'
    headers = caller.headers("POST", "/sms/v1/messages", body)
    with pytest.raises(PopDigestError):
        await validator.verify(
            parts("POST", "/sms/v1/messages", headers, body.replace(b"hi", b"yo"))
        )


async def test_not_subscribed(
    validator: Validator, server_key: PrivateKey, rsa_key: PrivateKey, replay: MemoryReplayStore
) -> None:
    token = make_token(server_key, rsa_key, apis=("connectivity",))
    body = b'{"to": "+14255550100", "text": "hi"}'
    headers = Caller(rsa_key, token).headers("POST", "/sms/v1/messages", body, jti="j-403")
    with pytest.raises(NotSubscribedError) as info:
        await validator.verify(parts("POST", "/sms/v1/messages", headers, body))
    assert info.value.status_code == 403
    # A refused request consumes nothing (SECURITY.md R3).
    assert not replay.contains("taap-client-a", "j-403", now=NOW)


async def test_unmapped_path_is_not_subscribed(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", "/elsewhere/v1/x")
    with pytest.raises(NotSubscribedError):
        await validator.verify(parts("GET", "/elsewhere/v1/x", headers))


async def test_product_override(validator: Validator, caller: Caller) -> None:
    headers = caller.headers("GET", "/custom/thing")
    principal = await validator.verify(
        parts("GET", "/custom/thing", headers), product="connectivity"
    )
    assert principal.product == "connectivity"


async def test_failed_checks_consume_no_jti(
    validator: Validator, caller: Caller, replay: MemoryReplayStore
) -> None:
    headers = caller.headers("GET", DEVICE, jti="keep-me")
    with pytest.raises(PopDigestError):
        await validator.verify(parts("GET", DEVICE + "?x=1", headers))
    assert len(replay) == 0
    await validator.verify(parts("GET", DEVICE, headers))
    assert len(replay) == 1


async def test_replay_store_full_is_unavailable(server_key: PrivateKey, caller: Caller) -> None:
    keys = StaticKeys({KID: server_key.public}, issuer=ISSUER)
    validator = Validator(keys, replay=MemoryReplayStore(capacity=1), clock=lambda: NOW)
    await validator.verify(parts("GET", DEVICE, caller.headers("GET", DEVICE)))
    with pytest.raises(UnavailableError) as info:
        await validator.verify(parts("GET", DEVICE, caller.headers("GET", DEVICE)))
    assert info.value.status_code == 503


def test_duplicate_authorization_is_malformed(caller: Caller) -> None:
    headers = [*caller.headers("GET", DEVICE).items(), ("authorization", "Bearer x")]
    with pytest.raises(RequestMalformedError):
        request_parts("GET", DEVICE, "", headers, b"")


async def test_no_issuer_anywhere_is_unavailable(server_key: PrivateKey, caller: Caller) -> None:
    validator = Validator(StaticKeys({KID: server_key.public}), clock=lambda: NOW)
    with pytest.raises(TaapError) as info:
        await validator.verify(parts("GET", DEVICE, caller.headers("GET", DEVICE)))
    assert info.value.error_code == "unavailable"
