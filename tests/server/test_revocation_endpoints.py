"""Revocation (RFC 7009) and introspection (RFC 7662) in process, on a fixed clock: what each
answers, what each records, and what the tokens issued around a cutoff look like
(docs/server.md, "Revocation and introspection")."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from revocation_kit import INTROSPECT, REVOKE, introspect_request, revoke_request
from server_kit import NOW, Harness, decode, make_harness, v6_body

from kit.wire import basic
from taap.core import PrivateKey
from taap.core.keys import jwk_thumbprint
from taap.core.revocation import RevocationState
from taap.core.tokens import issue_access_token
from taap.errors import TokenRevokedError
from taap.server.tokens.minting import id_token_jti

RS_NAME = "orders-api"


async def issue(h: Harness, version: str = "v2", **kwargs: Any) -> dict[str, Any]:
    response = await h.post(version, **kwargs)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def resource_server(h: Harness) -> tuple[str, str]:
    record, secret = await h.registry.create_resource_server(name=RS_NAME)
    return record.id, secret


async def introspect(h: Harness, rs: tuple[str, str], token: str, **kw: Any) -> httpx.Response:
    headers, body = introspect_request(*rs, token, **kw)
    async with h.http() as client:
        return await client.post(INTROSPECT, headers=headers, content=body)


async def active(h: Harness, rs: tuple[str, str], token: str) -> bool:
    response = await introspect(h, rs, token)
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def revoke(
    h: Harness,
    token: str,
    *,
    client: tuple[str, str, PrivateKey] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    client_id, secret, key = client or (h.client_id, h.secret, h.key)
    headers, body = revoke_request(client_id, secret, key, token, now=h.clock.now, **kwargs)
    async with h.http() as http:
        return await http.post(REVOKE, headers=headers, content=body)


async def revoked_jtis(h: Harness) -> set[str]:
    return {row.jti for row in await h.registry.revocations_after(0) if row.jti}


async def kid_of(h: Harness) -> str:
    return (await h.registry.signing_keys())[0].kid


# -- minting around a cutoff ------------------------------------------------------------------
async def test_a_token_issued_in_the_second_after_a_cutoff_is_stamped_with_it(
    harness: Harness,
) -> None:
    h = harness
    rs = await resource_server(h)
    h.clock.now = NOW + 0.3
    cutoff = await h.registry.revoke_client_tokens(h.client_id)
    assert cutoff == NOW + 1  # the next whole second
    tokens = await issue(h)  # still NOW + 0.3: before the fix, iat was NOW and was caught
    _, claims = decode(tokens["access_token"])
    _, id_claims = decode(tokens["id_token"])
    assert claims["iat"] == id_claims["iat"] == cutoff
    assert claims["exp"] == id_claims["exp"] == cutoff + h.settings.token_ttl
    assert await active(h, rs, tokens["access_token"])
    lines = [line for line in h.audit_lines if line["event"] == "token_issued"]
    assert lines[-1]["exp"] == cutoff + h.settings.token_ttl


async def test_a_second_cutoff_in_the_same_second_catches_a_token_stamped_with_the_first(
    harness: Harness,
) -> None:
    h = harness
    rs = await resource_server(h)
    h.clock.now = NOW + 0.1
    await h.registry.unsubscribe(h.client_id, "sms-notification")
    h.clock.now = NOW + 0.3
    token = (await issue(h))["access_token"]
    _, claims = decode(token)
    assert claims["iat"] == NOW + 1  # stamped with the unsubscription's cutoff
    assert await active(h, rs, token)
    h.clock.now = NOW + 0.5
    cutoff = await h.registry.revoke_client_tokens(h.client_id)  # issued before: caught
    assert cutoff == NOW + 2
    assert not await active(h, rs, token)
    state = RevocationState(max_age=5)
    state.apply(await h.registry.revocations_after(0), fetched_at=h.clock.now)
    with pytest.raises(TokenRevokedError):  # and so is every guard
        state.check_token(client_id=h.client_id, jti=claims["jti"], iat=claims["iat"], now=NOW)
    h.clock.now = NOW + 0.7
    fresh = (await issue(h))["access_token"]
    assert decode(fresh)[1]["iat"] == cutoff
    assert await active(h, rs, fresh)


async def test_without_a_cutoff_iat_is_the_clock(harness: Harness) -> None:
    harness.clock.now = NOW + 0.7
    _, claims = decode((await issue(harness))["access_token"])
    assert claims["iat"] == NOW


async def test_the_id_tokens_jti_is_derived_from_the_access_tokens(harness: Harness) -> None:
    tokens = await issue(harness)
    _, access = decode(tokens["access_token"])
    _, id_claims = decode(tokens["id_token"])
    assert id_claims["jti"] == id_token_jti(access["jti"]) != access["jti"]
    # a fixed derivation: ID tokens already issued stay linked to their access tokens
    assert id_token_jti("00000000-0000-4000-8000-000000000000") == (
        "66fdc092-d953-5a35-b835-b7a2b4506311"
    )


# -- revocation -----------------------------------------------------------------------------
async def test_revoking_an_access_token_revokes_the_id_token_of_the_same_answer(
    harness: Harness,
) -> None:
    h = harness
    rs = await resource_server(h)
    tokens = await issue(h)
    other = await issue(h)
    _, access = decode(tokens["access_token"])
    _, id_claims = decode(tokens["id_token"])
    response = await revoke(h, tokens["access_token"])
    assert response.status_code == 200, response.text
    assert response.content == b"{}"
    assert response.headers["cache-control"] == "no-store"
    assert await revoked_jtis(h) == {access["jti"], id_claims["jti"]}
    rows = await h.registry.revocations_after(0)
    assert {row.client_id for row in rows} == {h.client_id}
    assert not await active(h, rs, tokens["access_token"])
    assert await active(h, rs, other["access_token"])
    line = h.audit_lines[-1]
    assert (line["event"], line["endpoint"], line["status"]) == ("token_revoked", "revoke", 200)
    assert (line["client_id"], line["token_jti"], line["exp"]) == (
        h.client_id,
        access["jti"],
        access["exp"],
    )
    assert line["jti"]  # the PoP's
    assert all(tokens["access_token"] not in json.dumps(x) for x in h.audit_lines)


async def test_revoking_an_id_token_revokes_it_alone(harness: Harness) -> None:
    h = harness
    rs = await resource_server(h)
    tokens = await issue(h)
    _, id_claims = decode(tokens["id_token"])
    response = await revoke(h, tokens["id_token"], hint="id_token")
    assert response.status_code == 200
    assert await revoked_jtis(h) == {id_claims["jti"]}
    assert await active(h, rs, tokens["access_token"])


async def test_a_json_body_revokes_as_the_form_does(harness: Harness) -> None:
    tokens = await issue(harness)
    response = await revoke(harness, tokens["access_token"], form=False)
    assert response.status_code == 200, response.text
    assert len(await revoked_jtis(harness)) == 2


async def test_another_clients_token_is_answered_200_and_left_alone(
    harness: Harness, other_key: PrivateKey
) -> None:
    h = harness
    rs = await resource_server(h)
    victim = await issue(h)
    record, secret = await h.registry.create_client(
        name="intruder", keys=[other_key.public], apis=["connectivity"]
    )
    response = await revoke(h, victim["access_token"], client=(record.client_id, secret, other_key))
    assert response.status_code == 200
    assert response.content == b"{}"
    assert await revoked_jtis(h) == set()
    assert await active(h, rs, victim["access_token"])
    assert h.audit_lines[-1]["event"] == "revocation_ignored"
    assert h.audit_lines[-1]["token_jti"] is None


async def test_what_cannot_be_revoked_is_answered_200_with_nothing_recorded(
    harness: Harness, other_key: PrivateKey
) -> None:
    h = harness
    tokens = await issue(h)
    kid = await kid_of(h)
    common = {
        "client_id": h.client_id,
        "apis": ["connectivity"],
        "cnf_jwk": h.key.public.jwk,
        "now": NOW,
    }
    forged = issue_access_token(key=other_key, kid=kid, issuer=h.settings.issuer_url, **common)
    foreign = issue_access_token(key=other_key, kid="elsewhere", issuer="https://x", **common)
    for token in ("garbage", "a.b.c", forged, foreign, tokens["access_token"][:-4] + "AAAA"):
        response = await revoke(h, token)
        assert response.status_code == 200, token
        assert response.content == b"{}"
    assert await revoked_jtis(h) == set()
    # past exp + leeway no guard accepts it any more: nothing to revoke
    h.clock.now = NOW + h.settings.token_ttl + h.settings.leeway + 1
    assert (await revoke(h, tokens["access_token"])).status_code == 200
    assert await revoked_jtis(h) == set()


async def test_revoking_twice_is_200_and_one_row(harness: Harness) -> None:
    tokens = await issue(harness)
    for _ in range(2):
        assert (await revoke(harness, tokens["access_token"])).status_code == 200
    assert len(await harness.registry.revocations_after(0)) == 2  # access + ID, once each


async def _refused(h: Harness, headers: dict[str, str], body: bytes) -> httpx.Response:
    async with h.http() as client:
        return await client.post(REVOKE, headers=headers, content=body)


async def test_refused_revocations_revoke_nothing(harness: Harness) -> None:
    h = harness
    rs = await resource_server(h)
    token = (await issue(h))["access_token"]
    headers, body = revoke_request(h.client_id, h.secret, h.key, token, now=NOW)

    def without(name: str) -> dict[str, str]:
        return {k: v for k, v in headers.items() if k != name}

    wrong = headers | {"Authorization": basic(h.client_id, "wrong")}
    cases = [
        ("no PoP", without("X-Authorization"), 401, "pop_missing"),
        ("bad secret", wrong, 401, "client_auth_failed"),
        ("no Basic", without("Authorization"), 401, "client_auth_failed"),
    ]
    for what, sent, status, code in cases:
        response = await _refused(h, sent, body)
        assert (response.status_code, response.json()["error_code"]) == (status, code), what
        assert response.headers["www-authenticate"] == 'Basic realm="taap"'
    # a PoP over another body does not cover this one
    _, other_body = revoke_request(h.client_id, h.secret, h.key, token + "x", now=NOW)
    response = await _refused(h, headers, other_body)
    assert response.json()["error_code"] == "pop_edts_mismatch"
    # a PoP that leaves the body out is not enough (A2's default coverage)
    pop_no_body = revoke_request(h.client_id, h.secret, h.key, "", now=NOW, body=b"")[0]
    response = await _refused(h, pop_no_body, body)
    assert response.status_code == 401
    assert await revoked_jtis(h) == set()
    assert await active(h, rs, token)
    # the PoP that went through once is spent
    assert (await _refused(h, headers, body)).status_code == 200
    replayed = await _refused(h, headers, body)
    assert (replayed.status_code, replayed.json()["error_code"]) == (401, "pop_replayed")
    events = [line["event"] for line in h.audit_lines if line["endpoint"] == "revoke"]
    assert events.count("revocation_rejected") == 6
    assert events.count("token_revoked") == 1


async def test_a_disabled_client_cannot_revoke(harness: Harness) -> None:
    token = (await issue(harness))["access_token"]
    await harness.registry.set_status(harness.client_id, "disabled")
    response = await revoke(harness, token)
    assert (response.status_code, response.json()["error_code"]) == (401, "client_auth_failed")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b"token=abc", 415, "content_type_unsupported"),
        ("multipart/form-data; boundary=x", b"--x--", 415, "content_type_unsupported"),
        ("application/x-www-form-urlencoded", b"", 400, "body_invalid"),
        ("application/x-www-form-urlencoded", b"token=", 400, "body_invalid"),
        ("application/x-www-form-urlencoded", b"token=a&token=b", 400, "body_invalid"),
        ("application/x-www-form-urlencoded", b"token_type_hint=access_token", 400, "body_invalid"),
        ("application/x-www-form-urlencoded", b"token=%FF", 400, "body_invalid"),
        ("application/x-www-form-urlencoded", b"a=b=c&&", 400, "body_invalid"),
        ("application/json", b"", 400, "body_invalid"),
        ("application/json", b"[]", 400, "body_invalid"),
        ("application/json", b'{"token": 7}', 400, "body_invalid"),
        ("application/json", b'{"token": "a", "token": "b"}', 400, "body_invalid"),
        ("application/json", b'{"token": "a", "token_type_hint": []}', 400, "body_invalid"),
        ("application/json", json.dumps({"token": "x" * 8193}).encode(), 400, "body_invalid"),
    ],
)
async def test_bodies_that_name_no_token_are_refused(
    harness: Harness, content_type: str, body: bytes, status: int, code: str
) -> None:
    h = harness
    headers, sent = revoke_request(
        h.client_id, h.secret, h.key, "", now=NOW, body=body, content_type=content_type
    )
    response = await _refused(h, headers, sent)
    assert (response.status_code, response.json()["error_code"]) == (status, code)
    assert await revoked_jtis(h) == set()


async def test_a_token_of_a_mebibyte_is_refused_before_it_is_read(harness: Harness) -> None:
    h = harness
    huge = "x" * (1024 * 1024)
    headers, body = revoke_request(h.client_id, h.secret, h.key, huge, now=NOW)
    response = await _refused(h, headers, body)
    assert (response.status_code, response.json()["error_code"]) == (413, "body_too_large")
    response = await introspect(h, await resource_server(h), huge)
    assert (response.status_code, response.json()["error_code"]) == (413, "body_too_large")


async def test_only_post(harness: Harness) -> None:
    async with harness.http() as client:
        for path in (REVOKE, INTROSPECT):
            response = await client.get(path)
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"


# -- introspection ----------------------------------------------------------------------------
@pytest.mark.parametrize("form", [True, False])
async def test_introspection_of_a_live_token_says_exactly_this(
    harness: Harness, form: bool
) -> None:
    h = harness
    rs = await resource_server(h)
    tokens = await issue(h)
    _, claims = decode(tokens["access_token"])
    response = await introspect(h, rs, tokens["access_token"], form=form)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "active": True,
        "client_id": h.client_id,
        "sub": h.client_id,
        "iss": h.settings.issuer_url,
        "exp": NOW + 3600,
        "iat": NOW,
        "jti": claims["jti"],
        "token_type": "Bearer",
        "apis": ["connectivity", "sms-notification"],
        "cnf": {"jkt": h.key.thumbprint},
    }
    assert jwk_thumbprint(claims["cnf"]["jwk"]) == h.key.thumbprint


async def test_introspection_passes_the_v6_claims_on(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, apis=("call-verification",))
    rs = await resource_server(h)
    body = v6_body(h.client_id, h.secret, storeId="S-1", dealerCode="D-9")
    tokens = await issue(h, "v6", body=body)
    answer = (await introspect(h, rs, tokens["access_token"])).json()
    assert answer["apis"] == ["call-verification"]
    assert (answer["storeId"], answer["dealerCode"]) == ("S-1", "D-9")


async def test_introspection_says_inactive_for_anything_not_live(
    harness: Harness, other_key: PrivateKey
) -> None:
    h = harness
    rs = await resource_server(h)
    tokens = await issue(h)
    kid = await kid_of(h)
    wrong_issuer = issue_access_token(
        key=other_key,
        kid=kid,
        issuer="https://elsewhere",
        client_id=h.client_id,
        apis=["connectivity"],
        cnf_jwk=h.key.public.jwk,
        now=NOW,
    )
    for token in ("garbage", "x.y.z", tokens["id_token"], wrong_issuer):
        assert (await introspect(h, rs, token)).json() == {"active": False}, token
    assert await active(h, rs, tokens["access_token"])
    h.clock.now = NOW + 3600 + h.settings.leeway  # the last second a guard accepts it
    assert await active(h, rs, tokens["access_token"])
    h.clock.now += 1
    assert (await introspect(h, rs, tokens["access_token"])).json() == {"active": False}


async def test_a_disabled_client_and_a_client_cutoff_make_tokens_inactive(
    harness: Harness,
) -> None:
    h = harness
    rs = await resource_server(h)
    before = (await issue(h))["access_token"]
    await h.registry.set_status(h.client_id, "disabled")
    assert not await active(h, rs, before)
    await h.registry.set_status(h.client_id, "active")
    assert not await active(h, rs, before)  # re-enabling does not bring old tokens back
    h.clock.now = NOW + 2
    assert await active(h, rs, (await issue(h))["access_token"])


async def test_an_unsubscribed_product_leaves_the_apis(harness: Harness) -> None:
    h = harness
    rs = await resource_server(h)
    token = (await issue(h))["access_token"]
    await h.registry.unsubscribe(h.client_id, "sms-notification")
    answer = (await introspect(h, rs, token)).json()
    assert answer["active"] is True
    assert answer["apis"] == ["connectivity"]


async def test_client_credentials_do_not_introspect(harness: Harness) -> None:
    h = harness
    rs_id, rs_secret = await resource_server(h)
    token = (await issue(h))["access_token"]
    await h.registry.create_resource_server(name="second")
    cases = {
        "a client's credentials": (h.client_id, h.secret),
        "unknown resource server": ("rs_" + "A" * 32, rs_secret),
        "wrong secret": (rs_id, "wrong-secret"),
    }
    for what, creds in cases.items():
        response = await introspect(h, creds, token)
        assert response.status_code == 401, what
        assert response.json()["error_code"] == "client_auth_failed"
        assert response.headers["www-authenticate"] == 'Basic realm="taap"'
    await h.registry.set_resource_server_status(rs_id, "disabled")
    assert (await introspect(h, (rs_id, rs_secret), token)).status_code == 401
    async with h.http() as client:
        response = await client.post(INTROSPECT, data={"token": token})
    assert response.status_code == 401
    rejected = [line for line in h.audit_lines if line["event"] == "introspection_rejected"]
    assert len(rejected) == 5
    assert rejected[0]["client_id"] == h.client_id
    assert all(token not in json.dumps(line) for line in h.audit_lines)


async def test_failed_introspection_logins_are_rate_limited(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(
        rsa_key, signing_key=signing_key, rate_client="3/60", rate_address="100/1"
    )
    rs = await resource_server(h)
    token = (await issue(h))["access_token"]
    for _ in range(3):
        assert (await introspect(h, (rs[0], "wrong"), token)).status_code == 401
    limited = await introspect(h, (rs[0], "wrong"), token)
    assert (limited.status_code, limited.json()["error_code"]) == (429, "rate_limited")
    assert int(limited.headers["retry-after"]) > 0
    # while the bucket is empty the right secret gets 429 too: a guesser learns nothing
    assert (await introspect(h, rs, token)).status_code == 429
    h.clock.now += 180
    assert await active(h, rs, token)
