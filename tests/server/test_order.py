"""The A4 order of checks: a request with several faults gets the code of the first."""

from __future__ import annotations

from typing import Any

import pytest
from server_kit import NOW, Harness, basic, make_harness, v6_body

from taap.core import PrivateKey


@pytest.fixture
async def harness(rsa_key: PrivateKey, signing_key: PrivateKey) -> Harness:
    return await make_harness(
        rsa_key, signing_key=signing_key, max_body=1024, apis=("call-verification",)
    )


def _headers(h: Harness, version: str = "v2", **kwargs: Any) -> tuple[list[tuple[str, str]], bytes]:
    _, headers, body = h.request(version, **kwargs)
    return list(headers.items()), body


async def _send(
    h: Harness, method: str, headers: list[tuple[str, str]], body: bytes, version: str = "v2"
) -> str:
    async with h.http() as client:
        r = await client.request(method, f"/oauth2/{version}/tokens", headers=headers, content=body)
    return str(r.json()["error_code"])


BIG = ("X-Big", "a" * 17000)
TEXT = ("Content-Type", "text/plain")


async def test_method_before_caps(harness: Harness) -> None:
    headers, _ = _headers(harness)
    assert await _send(harness, "PUT", [*headers, BIG], b"x" * 4096) == "method_not_allowed"


async def test_header_cap_before_content_type(harness: Harness) -> None:
    headers, body = _headers(harness)
    assert await _send(harness, "POST", [*headers[1:], TEXT, BIG], body) == "headers_too_large"


async def test_body_cap_before_content_type(harness: Harness) -> None:
    headers, _ = _headers(harness)
    assert await _send(harness, "POST", [*headers[1:], TEXT], b"[" * 4096) == "body_too_large"


async def test_content_type_before_duplicates(harness: Harness) -> None:
    headers, body = _headers(harness)
    dup = [*headers[1:], TEXT, ("Authorization", "Basic eDp5")]
    assert await _send(harness, "POST", dup, body) == "content_type_unsupported"


async def test_duplicates_before_client_auth(harness: Harness) -> None:
    headers, body = _headers(harness, authorization=basic("nobody", "x"))
    dup = [*headers, ("X-Authorization", "a.b.c")]
    assert await _send(harness, "POST", dup, body) == "request_malformed"


async def test_invalid_utf8_before_client_auth(harness: Harness) -> None:
    headers, _ = _headers(harness, authorization=basic("nobody", "x"))
    assert await _send(harness, "POST", headers, b'{"a":"\xff"}') == "request_malformed"


async def test_client_auth_before_body_and_pop(harness: Harness) -> None:
    headers, _ = _headers(harness, "v6", authorization=basic(harness.client_id, "wrong"))
    headers = [(k, v) for k, v in headers if k != "X-Authorization"]
    assert await _send(harness, "POST", headers, b"[]", "v6") == "client_auth_failed"


async def test_rate_limit_before_body_rules(harness: Harness) -> None:
    bad = basic(harness.client_id, "wrong")
    for _ in range(10):
        headers, body = _headers(harness, authorization=bad)
        assert await _send(harness, "POST", headers, body) == "client_auth_failed"
    headers, _ = _headers(harness, "v6")
    headers = [(k, v) for k, v in headers if k != "X-Authorization"]
    assert await _send(harness, "POST", headers, b"[]", "v6") == "rate_limited"


async def test_body_rules_before_pop_missing(harness: Harness) -> None:
    headers, _ = _headers(harness, "v6")
    headers = [(k, v) for k, v in headers if k != "X-Authorization"]
    assert await _send(harness, "POST", headers, b"[]", "v6") == "body_invalid"


async def test_v6_credentials_before_grant_and_scope(harness: Harness) -> None:
    body = v6_body(harness.client_id, "other", scope="x", **{"grant-type": "password"})
    headers, raw = _headers(harness, "v6", body=body)
    assert await _send(harness, "POST", headers, raw, "v6") == "client_auth_failed"


async def test_grant_type_before_scope(harness: Harness) -> None:
    body = v6_body(harness.client_id, harness.secret, scope="x", **{"grant-type": "password"})
    headers, raw = _headers(harness, "v6", body=body)
    assert await _send(harness, "POST", headers, raw, "v6") == "grant_type_unsupported"


async def test_pop_missing_before_subscription(harness: Harness) -> None:
    headers, body = _headers(harness)  # the client has no v2 product
    headers = [(k, v) for k, v in headers if k != "X-Authorization"]
    assert await _send(harness, "POST", headers, body) == "pop_missing"


async def test_pop_signature_before_time_and_subscription(
    harness: Harness, other_key: PrivateKey
) -> None:
    headers, body = _headers(harness, key=other_key, pop_now=NOW - 1000)
    assert await _send(harness, "POST", headers, body) == "pop_signature_invalid"


async def test_pop_time_before_coverage(harness: Harness) -> None:
    headers, body = _headers(harness, pop_now=NOW - 1000, names=["uri"])
    assert await _send(harness, "POST", headers, body) == "pop_expired"


async def test_pop_coverage_before_digest(harness: Harness) -> None:
    headers, body = _headers(harness, names=["uri", "http-method"], sign_uri="/elsewhere")
    assert await _send(harness, "POST", headers, body) == "pop_ehts_insufficient"


async def test_pop_checks_before_subscription(harness: Harness) -> None:
    headers, body = _headers(harness, sign_uri="/elsewhere")
    assert await _send(harness, "POST", headers, body) == "pop_edts_mismatch"


async def test_subscription_before_replay(harness: Harness) -> None:
    headers, body = _headers(harness, jti="fixed-jti")
    assert await _send(harness, "POST", headers, body) == "not_subscribed"
    assert await _send(harness, "POST", headers, body) == "not_subscribed"
    assert harness.replay_size() == 0
    # the same jti is still fresh for the endpoint the client may use
    headers6, body6 = _headers(harness, "v6", jti="fixed-jti")
    async with harness.http() as client:
        r = await client.post("/oauth2/v6/tokens", headers=headers6, content=body6)
    assert r.status_code == 200, r.text
