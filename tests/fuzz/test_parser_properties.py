"""Property-based fuzzing (hypothesis) of every parser that reads untrusted input: the PoP
parser and verifier, the ``Authorization: Basic`` parser, request-value extraction, the v6 and
v2 token-request bodies, the guard's ``Bearer`` parser and access-token verifier, and the
``X-Forwarded-For`` walk.

The property is the same everywhere (SECURITY.md E3): any input yields a result or a
``TaapError`` — never another exception, which the servers would turn into a 500. Where a
parser accepts, what it returns is checked too. Examples are derandomized (the same inputs on
every run, so CI is reproducible) and bounded so the module stays within a few seconds.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from taap.core import (
    RequestParts,
    SignedValues,
    build_pop_token,
    decode_pop_token,
    generate_private_key,
    issue_access_token,
    request_pairs,
    request_parts,
    verify_access_token,
    verify_pop_token,
)
from taap.core._b64 import b64url_encode
from taap.core.jws import encode_segment, sign_compact
from taap.errors import (
    BodyInvalidError,
    ClientAuthError,
    GrantTypeUnsupportedError,
    PopError,
    RequestMalformedError,
    ScopeInvalidError,
    TokenInvalidError,
)
from taap.resource.validator import bearer_token
from taap.server.tokens.clientauth import (
    MAX_CLIENT_ID,
    check_v2_body,
    parse_basic,
    parse_v6_body,
    source_address,
)

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FUZZ_SLOW = settings(FUZZ, max_examples=150)  # each example signs with RSA

NOW = 1_800_000_000
KEY = generate_private_key(2048)
SERVER_KEY = generate_private_key(2048)
KID = "fuzz-kid"
ISSUER = "https://issuer.test/oauth2/v1"
CLIENT_ID = "taap-fuzz0000000000000000000000000000"
SECRET = "fuzz-secret_0123456789-abcdefghijklmnopqrstu"
B64URL = string.ascii_letters + string.digits + "-_"

texts = st.text(max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def _base_request() -> tuple[list[tuple[str, str]], RequestParts]:
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer abc.def.ghi")]
    parts = request_parts(
        "POST", b"/sms/v1/messages", b"", [(k.encode(), v.encode()) for k, v in headers], b"{}"
    )
    return headers, parts


HEADERS, PARTS = _base_request()
VALID_POP = build_pop_token(
    request_pairs("POST", "/sms/v1/messages", HEADERS, b"{}"), KEY, now=NOW, jti="j-1"
)


def _verify_pop(token: str) -> None:
    """Verify ``token``; a success must be a fully checked PoP for this request."""
    try:
        verified = verify_pop_token(token, keys=[KEY.public], request=PARTS, now=NOW)
    except PopError:
        return
    assert verified.jti
    assert verified.key == KEY.public
    assert {"Authorization", "uri", "http-method", "body"} <= {
        n if n in ("uri", "http-method", "body") else n.title() for n in verified.names
    }


# -- PoP parser and verifier -------------------------------------------------------------
@FUZZ
@given(st.text(max_size=300))
def test_pop_any_text(token: str) -> None:
    _verify_pop(token)
    with pytest.raises(PopError) if token.count(".") != 2 else _maybe(PopError):
        decode_pop_token(token)


class _maybe:
    """``pytest.raises`` that also allows no exception."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, self.kind)


segment = (
    st.text(alphabet=B64URL + "=+/. \t", max_size=60)
    | json_values.map(lambda v: b64url_encode(json.dumps(v).encode()))
    | st.binary(max_size=40).map(b64url_encode)
)


@FUZZ
@given(st.lists(segment, min_size=1, max_size=5))
def test_pop_token_shaped_garbage(segments: list[str]) -> None:
    _verify_pop(".".join(segments))


@FUZZ
@given(
    header=st.dictionaries(texts, json_values, max_size=4),
    claims=st.dictionaries(texts, json_values, max_size=6),
    overrides=st.dictionaries(
        st.sampled_from(["alg", "typ", "crit", "kid", "jwk", "b64"]), json_values, max_size=2
    ),
)
def test_pop_structured_header_and_claims(
    header: dict[str, Any], claims: dict[str, Any], overrides: dict[str, Any]
) -> None:
    head = encode_segment({"alg": "RS256", "typ": "JWT", **header, **overrides})
    body = encode_segment(claims)
    signature = b64url_encode(b"\x00" * 256)
    _verify_pop(f"{head}.{body}.{signature}")


edits = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(0, 10_000),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(edits)
def test_pop_mutated_valid_token(changes: list[tuple[str, int, str]]) -> None:
    token = VALID_POP
    for kind, where, char in changes:
        at = where % (len(token) + 1)
        if kind == "replace" and at < len(token):
            token = token[:at] + char + token[at + 1 :]
        elif kind == "insert":
            token = token[:at] + char + token[at:]
        elif at < len(token):
            token = token[:at] + token[at + 1 :]
    assume(token != VALID_POP)
    with pytest.raises(PopError):
        verify_pop_token(token, keys=[KEY.public], request=PARTS, now=NOW)


claim_overrides = st.fixed_dictionaries(
    {},
    optional={
        "iat": json_values | st.integers(NOW - 200, NOW + 200),
        "exp": json_values | st.integers(NOW - 200, NOW + 200),
        "ehts": json_values
        | st.lists(
            st.sampled_from(["Authorization", "uri", "http-method", "body", "Content-Type", ""]),
            max_size=5,
        ).map(";".join),
        "edts": json_values,
        "jti": json_values,
        "v": json_values,
        "nbf": json_values,
    },
)


@FUZZ_SLOW
@given(claim_overrides)
def test_pop_signed_with_the_right_key_any_claims(overrides: dict[str, Any]) -> None:
    # A real signature reaches A3 steps 4-6, where a type mix-up would surface.
    claims: dict[str, Any] = {
        "edts": "x",
        "v": "1",
        "exp": NOW + 60,
        "ehts": "Authorization;uri;http-method;body",
        "iat": NOW,
        "jti": "j",
        **overrides,
    }
    token = sign_compact(encode_segment({"alg": "RS256", "typ": "JWT"}), claims, KEY)
    _verify_pop(token)


# -- Basic auth ----------------------------------------------------------------------------
def _check_basic(value: str) -> None:
    try:
        client_id, secret = parse_basic(value)
    except ClientAuthError:
        return
    assert client_id
    assert secret
    assert ":" not in client_id
    assert len(client_id) <= MAX_CLIENT_ID


@FUZZ
@given(st.text(max_size=200))
def test_basic_any_text(value: str) -> None:
    _check_basic(value)


@FUZZ
@given(
    scheme=st.sampled_from(["Basic", "basic", "BASIC", "bAsIc", "Bearer", "Basic\t", "", "Basicx"]),
    gap=st.sampled_from([" ", "  ", "\t", "", " \t "]),
    raw=st.binary(max_size=120),
    tail=st.sampled_from(["", "=", "==", " ", "\n", "é", "!"]),
)
def test_basic_encoded_bytes(scheme: str, gap: str, raw: bytes, tail: str) -> None:
    _check_basic(f"{scheme}{gap}{base64.b64encode(raw).decode()}{tail}")


@FUZZ
@given(
    client_id=st.text(min_size=1, max_size=MAX_CLIENT_ID).filter(lambda s: ":" not in s),
    secret=st.text(min_size=1, max_size=80),
    scheme=st.sampled_from(["Basic", "basic", "BASIC"]),
)
def test_basic_round_trip(client_id: str, secret: str, scheme: str) -> None:
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in client_id + secret))
    value = f"{scheme} {base64.b64encode(f'{client_id}:{secret}'.encode()).decode()}"
    assert parse_basic(value) == (client_id, secret)


# -- request-value extraction --------------------------------------------------------------
header_names = st.sampled_from(
    [b"authorization", b"Authorization", b"x-authorization", b"content-type", b"x-extra", b"Host"]
) | st.binary(max_size=12)


@FUZZ
@given(
    method=st.text(max_size=8),
    path=st.binary(max_size=60) | st.text(max_size=60).map(lambda t: "/" + t),
    query=st.binary(max_size=60),
    headers=st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=6),
    body=st.binary(max_size=80),
)
def test_request_parts_any_bytes(
    method: str,
    path: bytes | str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    try:
        parts = request_parts(method, path, query, headers, body)
    except RequestMalformedError:
        return
    assert parts.uri.startswith("/")
    assert parts.value("http-method") == method
    assert parts.value("body") == body
    assert parts.has_body == bool(body)
    for name in parts.headers:
        assert name == name.lower()
        value = parts.value(name.upper())
        assert isinstance(value, str)
        assert "\r" not in value
        assert "\n" not in value
        assert "\x00" not in value


path_segment = st.text(
    st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=10
).filter(lambda s: s not in (".", ".."))
# What an escape may not spell in a query (docs/pop.md "Escapes in the query"): '&' anywhere,
# '=' in a name, '#', '+' (sent as %2B), and '%' (kept out: '%' plus two hex digits is refused).
query_name = st.text(st.characters(codec="utf-8", exclude_characters="&=#%+"), max_size=10)
query_value = st.text(st.characters(codec="utf-8", exclude_characters="&#%+"), max_size=10)


@FUZZ
@given(
    segments=st.lists(path_segment, min_size=1, max_size=4),
    query=st.lists(st.tuples(query_name, query_value), max_size=3),
)
def test_request_uri_is_the_percent_decoded_target(
    segments: list[str], query: list[tuple[str, str]]
) -> None:
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in "".join(segments)))
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for kv in query for c in "".join(kv)))
    path = "/" + "/".join(segments)
    raw_path = "/" + "/".join(quote(s, safe="") for s in segments)
    raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    parts = request_parts("GET", raw_path.encode(), raw_query.encode(), [], b"")
    expected = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    assert parts.uri == expected


# -- v6 / v2 token-request bodies ----------------------------------------------------------
def _check_v6(body: bytes) -> None:
    try:
        parsed = parse_v6_body(body, client_id=CLIENT_ID, client_secret=SECRET)
    except (BodyInvalidError, ClientAuthError, GrantTypeUnsupportedError, ScopeInvalidError):
        return
    assert (parsed.client_id, parsed.client_secret) == (CLIENT_ID, SECRET)
    obj = json.loads(body)
    assert obj["scope"] == "response_mode"
    assert "client_credentials" in (obj.get("grant-type"), obj.get("grant_type"))
    assert set(parsed.claims) <= {"storeId", "dealerCode"}
    assert all(isinstance(v, str) and 0 < len(v) <= 64 for v in parsed.claims.values())


def _check_v2(body: bytes) -> None:
    try:
        check_v2_body(body)
    except BodyInvalidError:
        return
    assert body == b"" or isinstance(json.loads(body), dict)


@FUZZ
@given(st.binary(max_size=200))
def test_v6_and_v2_any_bytes(body: bytes) -> None:
    _check_v6(body)
    _check_v2(body)


v6_members = st.dictionaries(
    st.sampled_from(
        ["client_id", "client_secret", "scope", "grant-type", "grant_type", "storeId", "dealerCode"]
    )
    | texts,
    st.sampled_from(
        [CLIENT_ID, SECRET, "response_mode", "client_credentials", "", "x" * 65, "s" * 64]
    )
    | json_values,
    max_size=8,
)


@FUZZ
@given(members=v6_members, ascii_only=st.booleans(), duplicate=st.booleans())
def test_v6_structured_bodies(members: dict[str, Any], ascii_only: bool, duplicate: bool) -> None:
    text = json.dumps(members, ensure_ascii=ascii_only)
    if duplicate and members:
        name = next(iter(members))
        text = text[:-1] + f", {json.dumps(name)}: 1}}"
    _check_v6(text.encode())
    _check_v2(text.encode())


@FUZZ
@given(
    grant=st.sampled_from([("grant-type",), ("grant_type",), ("grant-type", "grant_type")]),
    store=st.none() | st.text(max_size=64),
)
def test_v6_valid_bodies_are_accepted(grant: tuple[str, ...], store: str | None) -> None:
    body: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": SECRET}
    body["scope"] = "response_mode"
    body.update(dict.fromkeys(grant, "client_credentials"))
    if store is not None:
        body["storeId"] = store
    assume(store is None or not any(0xD800 <= ord(c) <= 0xDFFF for c in store))
    parsed = parse_v6_body(json.dumps(body).encode(), client_id=CLIENT_ID, client_secret=SECRET)
    assert parsed.claims == ({"storeId": store} if store else {})


# -- guard: Bearer parser and access-token verifier ----------------------------------------
def _check_access(value: str) -> None:
    try:
        token = verify_access_token(
            bearer_token(value), keys={KID: SERVER_KEY.public}, issuer=ISSUER, now=NOW
        )
    except TokenInvalidError:
        return
    assert token.client_id
    assert token.kid == KID


@FUZZ
@given(st.text(max_size=300))
def test_access_token_any_text(value: str) -> None:
    _check_access(value)
    _check_access("Bearer " + value)


@FUZZ_SLOW
@given(
    header=st.dictionaries(st.sampled_from(["kid", "typ", "alg", "crit"]) | texts, json_values),
    claims=st.dictionaries(
        st.sampled_from(["iss", "sub", "client_id", "exp", "iat", "jti", "apis", "cnf"]) | texts,
        json_values,
        max_size=8,
    ),
)
def test_access_token_signed_with_any_claims(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    base = {
        "iss": ISSUER,
        "sub": CLIENT_ID,
        "client_id": CLIENT_ID,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "t",
        "apis": ["connectivity"],
        "cnf": {"jwk": dict(KEY.public.jwk)},
    }
    segment = encode_segment({"kid": KID, "typ": "at+jwt", "alg": "RS256", **header})
    _check_access("Bearer " + sign_compact(segment, {**base, **claims}, SERVER_KEY))


@FUZZ
@given(edits)
def test_access_token_mutated(changes: list[tuple[str, int, str]]) -> None:
    token = issue_access_token(
        key=SERVER_KEY,
        kid=KID,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        apis=["connectivity"],
        cnf_jwk=KEY.public.jwk,
        now=NOW,
    )
    original = token
    for kind, where, char in changes:
        at = where % (len(token) + 1)
        if kind == "replace" and at < len(token):
            token = token[:at] + char + token[at + 1 :]
        elif kind == "insert":
            token = token[:at] + char + token[at:]
        elif at < len(token):
            token = token[:at] + token[at + 1 :]
    assume(token != original)
    with pytest.raises(TokenInvalidError):
        verify_access_token(token, keys={KID: SERVER_KEY.public}, issuer=ISSUER, now=NOW)


# -- X-Forwarded-For -----------------------------------------------------------------------
TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


@FUZZ
@given(
    peer=st.sampled_from(["127.0.0.1", "10.1.2.3", "203.0.113.5", "unknown", ""]) | texts,
    forwarded=st.lists(
        st.binary(max_size=60)
        | st.lists(st.ip_addresses().map(str), max_size=4).map(lambda a: ", ".join(a).encode()),
        max_size=3,
    ),
    star=st.booleans(),
)
def test_source_address_any_chain(peer: str, forwarded: list[bytes], star: bool) -> None:
    source = source_address(peer, forwarded, "*" if star else TRUSTED)
    assert isinstance(source, str)
    assert source or not peer
    if not star and peer not in ("127.0.0.1", "10.1.2.3"):
        assert source == peer  # an untrusted peer never chooses its own address


# -- the signed values of a request and of a SignedValues map agree ------------------------
@FUZZ
@given(
    extra=st.lists(
        st.tuples(
            st.text(string.ascii_letters + "-", min_size=1, max_size=10),
            st.text(string.printable.strip(), min_size=1, max_size=20),
        ),
        max_size=3,
        unique_by=lambda kv: kv[0].lower(),
    )
)
def test_extracted_values_verify_like_the_signed_map(extra: list[tuple[str, str]]) -> None:
    # Besides the headers already signed: uri, http-method and body are the names of A2's
    # pseudo-headers, which a header may not take (the builder refuses a name signed twice).
    taken = ("authorization", "content-type", "x-authorization", "uri", "http-method", "body")
    assume(not any(k.lower() in taken for k, _ in extra))
    headers = [*HEADERS, *extra]
    pairs = request_pairs("POST", "/sms/v1/messages", headers, b"{}")
    token = build_pop_token(pairs, KEY, now=NOW, jti="j-2")
    parts = request_parts(
        "POST", b"/sms/v1/messages", b"", [(k.encode(), v.encode()) for k, v in headers], b"{}"
    )
    a = verify_pop_token(token, keys=[KEY.public], request=parts, now=NOW)
    b = verify_pop_token(token, keys=[KEY.public], request=SignedValues(pairs), now=NOW)
    assert a.names == b.names
