"""Whatever arrives, the core raises only its documented errors (hypothesis).

Signed garbage matters most: with a real signature the later A3 steps are reached, where a
type mix-up would otherwise surface as a TypeError (a 500 at the server).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pop_forge import IAT, NOW, REQUEST, Forge, good_claims

from taap.core import (
    PopPolicy,
    PrivateKey,
    SignedValues,
    load_private_key,
    load_public_key,
    request_parts,
    verify_pop_token,
)
from taap.errors import KeyFormatError, PopError, RequestMalformedError

SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**39), 10**39)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(
        ["1", "uri;http-method", "Authorization;uri;http-method;body", IAT, IAT + 60]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
CLAIMS = ["edts", "v", "exp", "ehts", "iat", "jti", "nbf"]


def _outcome(token: str, key: PrivateKey, policy: str) -> str:
    try:
        verify_pop_token(
            token,
            keys=[key.public],
            request=SignedValues(REQUEST),
            now=NOW,
            policy=PopPolicy.named(policy),
        )
    except PopError as exc:
        return exc.error_code
    return "accepted"


@SLOW
@given(
    changes=st.dictionaries(st.sampled_from(CLAIMS), json_values, min_size=1, max_size=4),
    drop=st.sets(st.sampled_from(CLAIMS)),
    policy=st.sampled_from(["strict", "lenient", "java-compat"]),
)
def test_signed_claims_of_any_type(
    forge: Forge,
    demo_key: PrivateKey,
    changes: dict[str, Any],
    drop: set[str],
    policy: str,
) -> None:
    claims = {k: v for k, v in {**good_claims(), **changes}.items() if k not in drop}
    outcome = _outcome(forge({"alg": "RS256", "typ": "JWT"}, claims), demo_key, policy)
    assert outcome in {
        "accepted",
        "pop_malformed",
        "pop_expired",
        "pop_ehts_insufficient",
        "pop_edts_mismatch",
    }


@SLOW
@given(extra=st.dictionaries(texts, json_values, max_size=3), typ=json_values)
def test_signed_headers_of_any_shape(
    forge: Forge, demo_key: PrivateKey, extra: dict[str, Any], typ: Any
) -> None:
    header = {**extra, "alg": "RS256", "typ": typ}
    assert _outcome(forge(header, good_claims()), demo_key, "strict") in {
        "accepted",
        "pop_malformed",
    }


@settings(max_examples=300, deadline=None)
@given(
    method=st.text(max_size=8),
    path=st.one_of(st.binary(max_size=40), st.text(max_size=40)),
    query=st.one_of(st.binary(max_size=40), st.text(max_size=40)),
    headers=st.lists(
        st.tuples(
            st.one_of(st.binary(max_size=12), texts), st.one_of(st.binary(max_size=20), texts)
        ),
        max_size=6,
    ),
    body=st.binary(max_size=40),
)
def test_request_parts_raises_only_request_malformed(
    method: str, path: bytes | str, query: bytes | str, headers: list[Any], body: bytes
) -> None:
    try:
        parts = request_parts(method, path, query, headers, body)
    except RequestMalformedError:
        return
    assert parts.uri.startswith("/")
    assert all("\r" not in v and "\n" not in v for v in parts.headers.values())


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        texts.map(lambda t: "-----BEGIN PRIVATE KEY-----\n" + t + "\n-----END PRIVATE KEY-----"),
        json_values.map(json.dumps),
        st.dictionaries(
            st.sampled_from(["kty", "n", "e", "d", "p", "q", "keys"]), json_values, max_size=5
        ).map(json.dumps),
    )
)
def test_key_loading_raises_only_key_format_error(data: bytes | str) -> None:
    for load in (load_private_key, load_public_key):
        try:
            load(data)
        except KeyFormatError:
            continue
        raise AssertionError("garbage loaded as a key")
