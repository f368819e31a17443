"""The builder (A2): byte layout, defaults, and everything it refuses."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from taap.core import PrivateKey, SignedValues, build_pop_token, compute_edts, verify_pop_token
from taap.core._b64 import b64url_decode
from taap.errors import PopBuildError

PAIRS = [("Authorization", "Bearer t"), ("uri", "/u"), ("http-method", "GET")]


def _segments(token: str) -> tuple[bytes, bytes]:
    head, body, _ = token.split(".")
    return b64url_decode(head), b64url_decode(body)


def test_layout_and_defaults(rsa_key: PrivateKey) -> None:
    before = int(time.time())
    token = build_pop_token(PAIRS, rsa_key)
    header, payload = _segments(token)
    assert header == b'{"alg":"RS256","typ":"JWT"}'
    claims = json.loads(payload)
    assert list(claims) == ["edts", "v", "exp", "ehts", "iat", "jti"]
    assert payload == json.dumps(claims, separators=(",", ":")).encode()
    assert claims["v"] == "1"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 60
    assert claims["ehts"] == "Authorization;uri;http-method"
    assert claims["edts"] == compute_edts(["Bearer t", "/u", "GET"])
    assert uuid.UUID(claims["jti"]).version == 4
    assert "=" not in token


def test_edts_matches_the_published_demo_value() -> None:
    # TAAP.md B 2.4: the demo values give afqG...tSo (T-Mobile's Java readme).
    values = [
        "application/json",
        "Bearer UtKV75JJbVAewOrkHMXhLbiQ11SS",
        "/commerce/v1/orders",
        "POST",
        '{"orderId": 100, "product": "Mobile Phone"}',
    ]
    assert compute_edts(values) == "afqGWAbSevTP2m38quBjC8pA2HcxZXG4zpFCPShTtSo"
    assert compute_edts(v.encode() for v in values) == compute_edts(values)


def test_mapping_and_bytes_inputs(rsa_key: PrivateKey) -> None:
    as_map = build_pop_token(dict(PAIRS), rsa_key, now=1000, jti="j")
    as_list = build_pop_token(PAIRS, rsa_key, now=1000, jti="j")
    as_bytes = build_pop_token([(n, v.encode()) for n, v in PAIRS], rsa_key, now=1000, jti="j")
    assert as_map == as_list == as_bytes
    # a float clock is truncated like the JS builder's Math.floor
    assert build_pop_token(PAIRS, rsa_key, now=1000.99, jti="j") == as_list


@pytest.mark.parametrize(
    ("pairs", "kwargs"),
    [
        ([], {}),
        ([(f"X-{i}", "v") for i in range(101)], {}),
        ([("", "v")], {}),
        ([("  ", "v")], {}),
        ([(" uri", "/u")], {}),
        ([("X-A;B", "v")], {}),
        ([("X-A", "v"), ("x-a", "w")], {}),
        ([("uri", "/u"), ("URI", "/v")], {}),
        ([("X-A", "")], {}),
        ([("X-A", " \t")], {}),
        ([("X-A", "\u2003")], {}),
        ([("X-A", b"  ")], {}),
        ([("X-A", 5)], {}),
        ([(5, "v")], {}),
        ([("X-A", "\ud800")], {}),
        ([("body", b"\xff\xfe")], {}),
        (PAIRS, {"ttl": 0}),
        (PAIRS, {"ttl": 121}),
        (PAIRS, {"ttl": True}),
        (PAIRS, {"ttl": 60.0}),
        (PAIRS, {"jti": ""}),
        (PAIRS, {"jti": "j" * 129}),
        (PAIRS, {"jti": 7}),
    ],
)
def test_refusals(rsa_key: PrivateKey, pairs: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(PopBuildError) as info:
        build_pop_token(pairs, rsa_key, **kwargs)
    assert info.value.error_code == "pop_build_refused"


def test_limits_that_are_allowed(rsa_key: PrivateKey) -> None:
    hundred = [*PAIRS, *((f"X-{i}", "v") for i in range(97))]
    token = build_pop_token(hundred, rsa_key, ttl=120, jti="j" * 128, now=1000)
    verified = verify_pop_token(
        token, keys=[rsa_key.public], request=SignedValues(hundred), now=1001
    )
    assert len(verified.names) == 100
    # an empty body may be signed (the JS builder does); strict accepts it for a bodiless request
    with_empty = [*PAIRS, ("body", "")]
    token = build_pop_token(with_empty, rsa_key, now=1000)
    verify_pop_token(token, keys=[rsa_key.public], request=SignedValues(with_empty), now=1001)
