"""Happy paths of both token endpoints (TAAP.md A4): response shape, headers, token contents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from server_kit import BASE, NOW, TOKEN_KEYS, Harness, decode, make_harness, v6_body, verify_tokens

from taap.core import PrivateKey

ISSUER = f"{BASE}/oauth2/v1"


async def _jwks(harness: Harness) -> dict:  # type: ignore[type-arg]
    async with harness.http() as client:
        response = await client.get("/oauth2/v1/jwks")
    assert response.status_code == 200
    return response.json()


async def test_v2_issues_the_documented_response(harness: Harness) -> None:
    response = await harness.post("v2")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert list(payload) == TOKEN_KEYS
    assert payload["expires_in"] == "3599"
    assert payload["scope"] == ""
    assert payload["status"] == "approved"
    # byte-exact shape: compact JSON in the documented member order, expires_in a string
    expected = (
        f'{{"id_token":"{payload["id_token"]}","access_token":"{payload["access_token"]}",'
        '"expires_in":"3599","scope":"","status":"approved"}'
    )
    assert response.content == expected.encode()
    assert payload["id_token"] != payload["access_token"]


async def test_v2_access_token_claims(harness: Harness, rsa_key: PrivateKey) -> None:
    response = await harness.post("v2")
    payload = response.json()
    claims = verify_tokens(payload, await _jwks(harness), ISSUER, NOW)
    header, _ = decode(payload["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert list(header) == ["kid", "typ", "alg"]
    assert claims["sub"] == claims["aud"] == claims["client_id"] == harness.client_id
    assert claims["iss"] == ISSUER
    assert claims["iat"] == int(NOW)
    assert claims["exp"] - claims["iat"] == 3600
    # only the v2 products the client subscribes to (call-verification is served by v6)
    assert claims["apis"] == ["connectivity", "sms-notification"]
    assert claims["cnf"] == {"jwk": dict(rsa_key.public.jwk)}
    assert "storeId" not in claims


async def test_v2_id_token_claims(harness: Harness) -> None:
    payload = (await harness.post("v2")).json()
    header, claims = decode(payload["id_token"])
    assert header["typ"] == "JWT"
    assert set(claims) == {"sub", "aud", "iss", "exp", "iat", "jti"}
    assert claims["sub"] == claims["aud"] == harness.client_id
    assert claims["exp"] - claims["iat"] == 3600
    _, access = decode(payload["access_token"])
    assert claims["jti"] != access["jti"]


async def test_v6_issues_with_store_and_dealer(harness: Harness) -> None:
    body = v6_body(harness.client_id, harness.secret, storeId="S-42", dealerCode="D-7")
    response = await harness.post("v6", body=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert list(payload) == TOKEN_KEYS
    claims = verify_tokens(payload, await _jwks(harness), ISSUER, NOW)
    assert claims["apis"] == ["call-verification"]
    assert claims["storeId"] == "S-42"
    assert claims["dealerCode"] == "D-7"


async def test_v6_accepts_the_rfc_grant_type_spelling(harness: Harness) -> None:
    body = json.dumps(
        {
            "client_id": harness.client_id,
            "client_secret": harness.secret,
            "scope": "response_mode",
            "grant_type": "client_credentials",
        }
    )
    response = await harness.post("v6", body=body)
    assert response.status_code == 200, response.text


async def test_v2_accepts_a_json_object_body_bound_by_the_pop(harness: Harness) -> None:
    response = await harness.post("v2", body='{"hello": "world"}')
    assert response.status_code == 200, response.text


async def test_charset_parameter_allowed(harness: Harness) -> None:
    path, headers, body = harness.request("v2")
    headers["Content-Type"] = "application/json; charset=utf-8"
    from server_kit import sign

    headers["X-Authorization"] = sign(
        harness.key,
        authorization=headers["Authorization"],
        uri=path,
        overrides={"Content-Type": headers["Content-Type"]},
    )
    async with harness.http() as client:
        response = await client.post(path, headers=headers, content=body)
    assert response.status_code == 200, response.text


async def test_replay_entry_recorded_after_issuance(harness: Harness) -> None:
    from taap.core.pop import decode_pop_token

    path, headers, body = harness.request("v2")
    jti = decode_pop_token(headers["X-Authorization"])[1]["jti"]
    assert not harness.replay.contains(harness.client_id, jti, now=NOW)
    async with harness.http() as client:
        response = await client.post(path, headers=headers, content=body)
    assert response.status_code == 200
    assert harness.replay.contains(harness.client_id, jti, now=NOW)


async def test_token_mode_single(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, token_mode="single")
    response = await h.post("v2")
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["id_token"] == payload["access_token"]
    header, claims = decode(payload["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["apis"] == ["connectivity", "sms-notification"]


async def test_custom_ttl_and_issuer(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(
        rsa_key, signing_key=signing_key, token_ttl=600, issuer="https://id.example/oauth2/v1"
    )
    payload = (await h.post("v2")).json()
    assert payload["expires_in"] == "599"
    _, claims = decode(payload["access_token"])
    assert claims["iss"] == "https://id.example/oauth2/v1"
    assert claims["exp"] - claims["iat"] == 600


async def test_issuance_is_audited_without_secrets(harness: Harness) -> None:
    path, headers, body = harness.request("v2")
    async with harness.http() as client:
        response = await client.post(path, headers=headers, content=body)
    payload = response.json()
    [line] = harness.audit_lines
    assert line["event"] == "token_issued"
    assert line["ts"] == "2027-01-15T08:00:00.000Z"
    assert line["client_id"] == harness.client_id
    assert line["endpoint"] == "v2"
    assert line["status"] == 200
    assert line["source"] == "203.0.113.7"
    assert line["kid"] == decode(payload["access_token"])[0]["kid"]
    assert line["token_jti"] == decode(payload["access_token"])[1]["jti"]
    assert line["exp"] == decode(payload["access_token"])[1]["exp"]
    assert line["apis"] == ["connectivity", "sms-notification"]
    text = json.dumps(line)
    for secret in (harness.secret, headers["X-Authorization"], payload["access_token"]):
        assert secret not in text
    assert headers["Authorization"].split()[1] not in text


async def test_rotated_signing_key_signs_after_refresh(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, key_refresh=0, jwks_min_refresh=0)
    first = decode((await h.post("v2")).json()["access_token"])[0]["kid"]
    record = await h.registry.rotate_signing_key()
    second_payload = (await h.post("v2")).json()
    assert decode(second_payload["access_token"])[0]["kid"] == record.kid != first
    jwks = await _jwks(h)
    kids = [k["kid"] for k in jwks["keys"]]
    assert kids[0] == record.kid
    assert first in kids
    verify_tokens(second_payload, jwks, ISSUER, NOW)


async def test_rotated_key_signs_once_published_for_the_guards_min_refresh(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    # Publish before use: a guard may refetch the JWKS only TAAP_JWKS_MIN_REFRESH after its
    # last fetch, so the new key signs only once it has been in the JWKS that long.
    h = await make_harness(rsa_key, signing_key=signing_key, key_refresh=0, jwks_min_refresh=30)
    first = decode((await h.post("v2")).json()["access_token"])[0]["kid"]
    h.clock.now += 3600
    record = await h.registry.rotate_signing_key()
    assert [k["kid"] for k in (await _jwks(h))["keys"]] == [record.kid, first]
    h.clock.now += 29
    assert decode((await h.post("v2")).json()["access_token"])[0]["kid"] == first
    h.clock.now += 1
    assert decode((await h.post("v2")).json()["access_token"])[0]["kid"] == record.kid


async def test_v6_empty_grant_type_counts_as_absent(harness: Harness) -> None:
    body = json.dumps(
        {
            "client_id": harness.client_id,
            "client_secret": harness.secret,
            "scope": "response_mode",
            "grant-type": "",
            "grant_type": "client_credentials",
            "storeId": "",
        }
    )
    response = await harness.post("v6", body=body)
    assert response.status_code == 200, response.text
    assert "storeId" not in decode(response.json()["access_token"])[1]


async def test_signing_threads_issue_the_same_tokens(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    # TAAP_SIGN_THREADS moves the RS256 signatures off the event loop; nothing else changes.
    import asyncio

    for mode in ("separate", "single"):
        h = await make_harness(rsa_key, signing_key=signing_key, sign_threads=2, token_mode=mode)
        signer = h.app.tokens.signer  # type: ignore[attr-defined]
        submitted: list[int] = []
        real_sign = signer.sign_on_thread

        async def counting_sign(
            key: Any, inputs: Any, _real: Any = real_sign, _seen: list[int] = submitted
        ) -> Any:
            _seen.append(len(inputs))
            return await _real(key, inputs)

        signer.sign_on_thread = counting_sign
        # Alone on the loop, a request signs inline: the hand-off would only add latency.
        assert (await h.post("v2")).status_code == 200
        assert submitted == []
        assert signer.threads == ()  # started on first use only
        # Requests that arrive together sign on the pool while the loop serves the others.
        responses = await asyncio.gather(*(h.post("v2") for _ in range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        assert len(submitted) >= 4
        assert set(submitted) == {1 if mode == "single" else 2}  # one job per request
        assert 1 <= len(signer.threads) <= 2
        jwks = await _jwks(h)
        for response in responses:
            payload = response.json()
            assert list(payload) == TOKEN_KEYS
            claims = verify_tokens(payload, jwks, ISSUER, NOW)
            assert claims["client_id"] == h.client_id
            same = payload["id_token"] == payload["access_token"]
            assert same is (mode == "single")
        issued = [line for line in h.audit_lines if line["event"] == "token_issued"]
        assert len(issued) == 9
        assert len({line["token_jti"] for line in issued}) == 9


async def test_closing_the_app_stops_the_signing_threads(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    import asyncio

    h = await make_harness(rsa_key, signing_key=signing_key, sign_threads=2)
    responses = await asyncio.gather(*(h.post("v2") for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    signer = h.app.tokens.signer  # type: ignore[attr-defined]
    started = signer.threads
    assert started
    assert all(thread.is_alive() for thread in started)
    await h.app.aclose()  # type: ignore[attr-defined]
    assert signer.threads == ()
    assert not any(thread.is_alive() for thread in started)  # joined, not left behind
    with pytest.raises(RuntimeError, match="closed"):
        await signer.sign(signing_key, [b"x"])  # closed threads refuse new work


def test_usable_cpus_without_an_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS and Windows have no os.sched_getaffinity: the core count is used instead.
    import os

    from taap.server.tokens import signing

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert signing.usable_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert signing.usable_cpus() == 1


def test_secrets_stay_out_of_reprs() -> None:
    from taap.server.tokens.clientauth import V6Body, parse_v6_body

    body = parse_v6_body(
        b'{"client_id":"c1","client_secret":"s3cret-value","grant_type":"client_credentials",'
        b'"scope":"response_mode"}',
        client_id="c1",
        client_secret="s3cret-value",
    )
    assert isinstance(body, V6Body)
    assert body.client_secret == "s3cret-value"
    assert "s3cret-value" not in repr(body)
    assert "s3cret-value" not in str(body)
