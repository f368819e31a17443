"""Property tests (hypothesis): round trips, and any change to a token or a value is caught."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import string
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from taap.core import (
    PopPolicy,
    PrivateKey,
    SignedValues,
    build_pop_token,
    compute_edts,
    decode_pop_token,
    verify_pop_token,
)
from taap.core._b64 import b64url_decode, b64url_encode
from taap.core.jws import _loads_payload, sign_compact
from taap.core.strict_json import JsonError, dumps_compact, loads_strict
from taap.errors import PopDigestError, PopError

NOW = 1_700_000_000
LENIENT = PopPolicy.named("lenient")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# RFC 9110 token characters, minus ";" which TAAP cannot represent in a name.
_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
header_names = st.text(alphabet=_TCHAR, min_size=1, max_size=20)
# Any Unicode text except lone surrogates (not encodable, refused by the builder).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
values = texts.filter(lambda v: v.strip() != "")


def _fold(name: str) -> str:
    return name if name in ("uri", "http-method", "body") else name.lower()


@st.composite
def ordered_maps(draw: st.DrawFn) -> list[tuple[str, str]]:
    names = draw(
        st.lists(
            st.one_of(header_names, st.sampled_from(["uri", "http-method", "body"])),
            min_size=1,
            max_size=12,
            unique_by=_fold,
        )
    )
    return [(name, draw(texts if name == "body" else values)) for name in names]


def _verify(token: str, key: PrivateKey, pairs: list[tuple[str, str]], **kw: Any) -> Any:
    return verify_pop_token(
        token,
        keys=[key.public],
        request=SignedValues(pairs),
        now=NOW + 1,
        policy=kw.get("policy", LENIENT),
    )


@SETTINGS
@given(pairs=ordered_maps(), ttl=st.integers(1, 120))
def test_build_then_verify_round_trips(
    demo_key: PrivateKey, pairs: list[tuple[str, str]], ttl: int
) -> None:
    token = build_pop_token(pairs, demo_key, ttl=ttl, now=NOW)
    verified = _verify(token, demo_key, pairs)
    assert verified.names == tuple(n for n, _ in pairs)
    assert verified.claims["ehts"] == ";".join(n for n, _ in pairs)
    assert verified.claims["edts"] == compute_edts(v for _, v in pairs)
    assert verified.claims["exp"] - verified.claims["iat"] == ttl
    assert list(verified.claims) == ["edts", "v", "exp", "ehts", "iat", "jti"]
    # with the names strict requires, strict accepts the same map too
    full = [("Authorization", "Bearer t"), ("uri", "/u"), ("http-method", "GET")]
    full += [p for p in pairs if _fold(p[0]) not in ("authorization", "uri", "http-method", "body")]
    strict_token = build_pop_token(full, demo_key, now=NOW)
    assert verify_pop_token(
        strict_token, keys=[demo_key.public], request=SignedValues(full), now=NOW + 1
    )


@SETTINGS
@given(pairs=ordered_maps(), data=st.data())
def test_any_changed_token_character_fails(
    demo_key: PrivateKey, pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    token = build_pop_token(pairs, demo_key, now=NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_.=+/ é"))
    assume(replacement != token[index])
    tampered = token[:index] + replacement + token[index + 1 :]
    try:
        _verify(tampered, demo_key, pairs)
    except PopError:
        return
    raise AssertionError(f"tampered token accepted (index {index})")


@SETTINGS
@given(pairs=ordered_maps(), data=st.data())
def test_any_changed_signed_value_fails(
    demo_key: PrivateKey, pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    token = build_pop_token(pairs, demo_key, now=NOW)
    index = data.draw(st.integers(0, len(pairs) - 1))
    name, value = pairs[index]
    new = data.draw(values)
    assume(new != value)
    changed = list(pairs)
    changed[index] = (name, new)
    try:
        _verify(token, demo_key, changed)
    except PopDigestError:
        return
    raise AssertionError("changed value accepted")


@SETTINGS
@given(pairs=ordered_maps().filter(lambda p: len(p) >= 2), data=st.data())
def test_reordered_ehts_fails(
    demo_key: PrivateKey, pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    # Re-sign a token whose ehts lists the same names in another order but keeps the edts:
    # the signature is valid, so only the digest can (and must) catch the reordering.
    token = build_pop_token(pairs, demo_key, now=NOW)
    claims = decode_pop_token(token)[1]
    order = data.draw(st.permutations(range(len(pairs))))
    reordered = [pairs[i] for i in order]
    assume("".join(v for _, v in reordered) != "".join(v for _, v in pairs))
    claims["ehts"] = ";".join(n for n, _ in reordered)
    forged = sign_compact(token.split(".")[0], claims, demo_key)
    try:
        _verify(forged, demo_key, pairs)
    except PopDigestError:
        return
    raise AssertionError("reordered ehts accepted")


_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")


@settings(max_examples=500)
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_+/= \n.é", max_size=12))
def test_strict_base64url_is_exactly_the_canonical_spelling(text: str) -> None:
    try:
        decoded: bytes | None = b64url_decode(text)
    except ValueError:
        decoded = None
    canonical: bytes | None = None
    if _URLSAFE.fullmatch(text) and len(text) % 4 != 1:
        candidate = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if b64url_encode(candidate) == text:
            canonical = candidate
    assert decoded == canonical


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_base64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert b64url_decode(encoded) == data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(
    st.one_of(
        st.binary(max_size=200), st.text(max_size=200), json_values.map(lambda v: json.dumps(v))
    )
)
def test_strict_json_raises_only_json_error(data: bytes | str) -> None:
    # Any other exception type (RecursionError, OverflowError, UnicodeError...) fails the test.
    with contextlib.suppress(JsonError):
        loads_strict(data, require_object=False, max_depth=3)


@settings(max_examples=200)
@given(json_values.filter(lambda v: isinstance(v, dict)))
def test_strict_json_round_trips_what_it_accepts(value: dict[str, Any]) -> None:
    text = dumps_compact(value)
    try:
        parsed = loads_strict(text, max_depth=64)
    except JsonError:
        return  # NaN, Infinity, huge numbers: refused, as designed
    assert dumps_compact(parsed) == text


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(
            st.text(alphabet=string.ascii_letters + "-_=", max_size=60), min_size=1, max_size=5
        ).map(".".join),
    )
)
def test_verify_raises_only_pop_errors(demo_key: PrivateKey, token: str) -> None:
    try:
        _verify(token, demo_key, [("uri", "/")])
    except PopError:
        return
    raise AssertionError("garbage accepted")


claim_strings = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
claim_ints = st.one_of(st.integers(0, 10**18), st.integers(-(10**40), 10**40))


@settings(max_examples=400)
@given(
    edts=claim_strings,
    v=st.one_of(claim_strings, claim_ints, st.booleans(), st.none()),
    exp=st.one_of(claim_ints, st.floats(), claim_strings),
    ehts=claim_strings,
    iat=claim_ints,
    jti=claim_strings,
    spacing=st.sampled_from([(",", ":"), (", ", ": ")]),
)
def test_builder_payload_fast_path_equals_the_strict_parser(
    edts: str, v: Any, exp: Any, ehts: str, iat: int, jti: str, spacing: tuple[str, str]
) -> None:
    # The regex fast path in jws must return exactly what loads_strict returns, or defer to it.
    claims = {"edts": edts, "v": v, "exp": exp, "ehts": ehts, "iat": iat, "jti": jti}
    raw = json.dumps(claims, separators=spacing, ensure_ascii=False).encode()
    try:
        expected: Any = loads_strict(raw, max_depth=8)
    except JsonError as exc:
        expected = type(exc)
    try:
        got: Any = _loads_payload(raw)
    except JsonError as exc:
        got = type(exc)
    assert got == expected
    if isinstance(got, dict):
        assert list(got) == list(expected)
        assert [type(x) for x in got.values()] == [type(x) for x in expected.values()]
