"""explain_pop: real tokens signed over one request, explained against an altered one."""

from __future__ import annotations

import json

import pytest

from taap.core import (
    JAVA_COMPAT,
    LENIENT,
    Explanation,
    PrivateKey,
    build_pop_token,
    canonical_uri,
    compute_edts,
    explain_pop,
    request_pairs,
    split_target,
)
from taap.core._b64 import b64url_encode
from taap.core.jws import sign_compact
from taap.errors import PopMalformedError, RequestMalformedError

NOW = 1_760_000_000
AUTH = "Bearer abc.def.ghi"
BODY = b'{"name": "caf\xc3\xa9", "n": 1}'
URI = "/v1/devices?page=2&q=a%20b"


def sign(
    key: PrivateKey,
    *,
    method: str = "POST",
    uri: str = URI,
    body: bytes = BODY,
    auth: str = AUTH,
    ctype: str = "application/json",
    at: int = NOW,
    ttl: int = 60,
    raw_uri: bool = False,
) -> str:
    signed_uri = uri if raw_uri else canonical_uri(*split_target(uri))
    headers = [("Content-Type", ctype), ("Authorization", auth)]
    return build_pop_token(
        request_pairs(method, signed_uri, headers, body), key, now=at, ttl=ttl, jti="j1"
    )


def explain(token: str, **overrides: object) -> Explanation:
    request: dict[str, object] = {
        "method": "POST",
        "uri": URI,
        "headers": [("Content-Type", "application/json"), ("Authorization", AUTH)],
        "body": BODY,
        "now": NOW + 5,
    }
    request.update(overrides)
    return explain_pop(token, **request)  # type: ignore[arg-type]


def kinds(result: Explanation) -> list[str]:
    return [f.kind for f in result.findings]


def test_matching_request(rsa_key: PrivateKey) -> None:
    result = explain_pop(
        sign(rsa_key),
        method="POST",
        uri=URI,
        headers=[("content-type", " application/json "), ("AUTHORIZATION", AUTH)],
        body=BODY,
        public_key=rsa_key.public,
        now=NOW + 5,
    )
    assert result.matches
    assert result.digest_matches
    assert result.signature_valid
    assert result.findings == ()
    assert result.expected_edts == result.claimed_edts
    assert [(i.name, i.value) for i in result.items] == [
        ("Content-Type", "application/json"),
        ("Authorization", AUTH),
        ("uri", "/v1/devices?page=2&q=a b"),
        ("http-method", "POST"),
        ("body", BODY.decode()),
    ]
    assert result.lifetime.ok
    assert result.lifetime.age == 5
    assert result.lifetime.lifetime == 60
    assert result.lifetime.expires_in == 55
    assert result.claims["jti"] == "j1"
    assert result.header["alg"] == "RS256"


def test_query_left_out_of_uri(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, uri="/v1/devices"))
    assert not result.matches
    assert kinds(result) == ["query"]
    assert "without its query" in result.findings[0].message


def test_uri_signed_undecoded(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, raw_uri=True))
    assert kinds(result) == ["uri_encoding"]


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        (json.dumps(json.loads(BODY), separators=(",", ":"), ensure_ascii=False), "json"),
        (json.dumps(json.loads(BODY), indent=2, ensure_ascii=False), "json"),
        (json.dumps(json.loads(BODY)), "json_escaping"),
    ],
)
def test_json_re_serialised(rsa_key: PrivateKey, signed: str, expected: str) -> None:
    result = explain(sign(rsa_key, body=signed.encode()))
    assert kinds(result) == [expected]
    assert "re-serialised" in result.findings[0].message


def test_trailing_newline(rsa_key: PrivateKey) -> None:
    assert kinds(explain(sign(rsa_key, body=BODY + b"\n"))) == ["body_newline"]
    assert kinds(explain(sign(rsa_key), body=BODY + b"\n")) == ["body_newline"]


def test_line_endings(rsa_key: PrivateKey) -> None:
    text = b"line one\r\nline two"
    headers = [("Content-Type", "text/plain"), ("Authorization", AUTH)]
    token = sign(rsa_key, body=text, ctype="text/plain")
    result = explain(token, headers=headers, body=text.replace(b"\r", b""))
    assert kinds(result) == ["body_line_endings"]
    assert result.findings[0].message.endswith("CRLF line endings, not LF")
    back = explain(
        sign(rsa_key, body=text.replace(b"\r", b""), ctype="text/plain"), headers=headers, body=text
    )
    assert kinds(back) == ["body_line_endings"]


def test_method_case(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, method="post"))
    assert kinds(result) == ["method_case"]
    assert "'post'" in result.findings[0].message


def test_header_value_changed(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, auth="Bearer an.older.token"))
    assert kinds(result) == ["value_changed"]
    assert "'Authorization'" in result.findings[0].message
    assert result.expected_edts != result.claimed_edts


def test_header_signed_with_spaces(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, auth=AUTH + " "))
    assert kinds(result) == ["header_spaces"]


def test_two_changes_at_once(rsa_key: PrivateKey) -> None:
    compact = json.dumps(json.loads(BODY), separators=(",", ":"), ensure_ascii=False)
    result = explain(sign(rsa_key, uri="/v1/devices", body=compact.encode()))
    assert sorted(kinds(result)) == ["json", "query"]


def test_absent_header(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key), headers=[("Authorization", AUTH)])
    assert kinds(result) == ["absent"]
    assert result.expected_edts is None
    assert result.items[0].value is None


def test_expired_with_numbers(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key), now=NOW + 100)
    assert kinds(result) == ["expired", "too_old"]
    assert "expired 40 s ago (exp 1760000060, leeway 10 s)" in result.findings[0].message
    assert "issued 100 s ago" in result.findings[1].message
    assert result.digest_matches
    assert not result.matches
    assert not result.lifetime.ok
    assert result.lifetime.age == 100


def test_too_old_and_future(rsa_key: PrivateKey) -> None:
    token = build_pop_token(
        request_pairs("GET", "/x", [("Authorization", AUTH)]), rsa_key, now=NOW, ttl=120
    )
    old = explain_pop(
        token, method="GET", uri="/x", headers=[("Authorization", AUTH)], now=NOW + 75
    )
    assert [f.kind for f in old.findings] == ["too_old"]
    assert (
        "issued 75 s ago (iat 1760000000), over the maximum age of 60 s" in old.findings[0].message
    )
    ahead = explain_pop(
        token, method="GET", uri="/x", headers=[("Authorization", AUTH)], now=NOW - 30
    )
    assert [f.kind for f in ahead.findings] == ["not_yet_valid"]
    assert "30 s ahead" in ahead.findings[0].message


def test_signature_right_and_wrong_key(rsa_key: PrivateKey, other_key: PrivateKey) -> None:
    token = sign(rsa_key)
    assert explain(token, public_key=rsa_key.public).signature_valid is True
    wrong = explain(token, public_key=other_key.public)
    assert wrong.signature_valid is False
    assert not wrong.matches
    assert kinds(wrong) == ["signature"]
    assert explain(token).signature_valid is None


def test_strict_coverage(rsa_key: PrivateKey) -> None:
    token = build_pop_token(request_pairs("GET", "/x", []), rsa_key, now=NOW)
    result = explain_pop(token, method="GET", uri="/x", headers=[], now=NOW)
    assert kinds(result) == ["coverage"]
    assert "Authorization" in result.findings[0].message
    lenient = explain_pop(token, method="GET", uri="/x", headers=[], now=NOW, policy=JAVA_COMPAT)
    assert lenient.matches


def test_bad_inputs(rsa_key: PrivateKey) -> None:
    with pytest.raises(PopMalformedError):
        explain("not-a-token")
    with pytest.raises(RequestMalformedError):
        explain(sign(rsa_key), uri="/a%2Fb")
    with pytest.raises(ValueError, match="finite"):
        explain(sign(rsa_key), now=float("nan"))


@pytest.mark.parametrize(
    ("signed_ctype", "sent_ctype"),
    [
        ("application/json", "application/json; charset=utf-8"),
        ("application/json; charset=utf-8", "application/json"),
    ],
)
def test_content_type_charset(rsa_key: PrivateKey, signed_ctype: str, sent_ctype: str) -> None:
    token = sign(rsa_key, ctype=signed_ctype)
    result = explain(token, headers=[("Content-Type", sent_ctype), ("Authorization", AUTH)])
    assert kinds(result) == ["header_value"]
    assert result.findings[0].message.startswith("the PoP was signed over header 'Content-Type'")


def test_authorization_scheme_and_secret_not_echoed(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, auth="bearer abc.def.ghi"))
    assert kinds(result) == ["header_value"]
    assert "with the scheme written 'bearer'" in result.findings[0].message
    assert "abc.def.ghi" not in result.findings[0].message
    bare = explain(sign(rsa_key, auth="abc.def.ghi"))
    assert "without the 'Bearer' scheme" in bare.findings[0].message


def test_trailing_slash(rsa_key: PrivateKey) -> None:
    result = explain(sign(rsa_key, uri="/v1/devices/?page=2&q=a%20b"))
    assert kinds(result) == ["uri_slash"]
    assert "with a trailing '/'" in result.findings[0].message


def test_many_headers_and_large_body_stay_bounded(rsa_key: PrivateKey) -> None:
    # 100 signed names and a 1 MiB body: the pair search stops at its budget and the answer is
    # the honest "value_changed", not a hang.
    headers = [(f"X-H{i}", f"v{i}") for i in range(97)]
    body = b"x" * (1024 * 1024)
    token = build_pop_token(request_pairs("PUT", "/big", headers, body), rsa_key, now=NOW)
    changed = [*headers[:-1], ("X-H96", "other")]
    request = {"method": "PUT", "uri": "/big", "headers": changed, "body": body}
    result = explain_pop(token, now=NOW, policy=LENIENT, **request)  # type: ignore[arg-type]
    assert kinds(result) == ["value_changed"]
    assert "'X-H0', 'X-H1'" in result.findings[0].message
    assert len(result.findings[0].message) < 600


def test_java_compat_token_without_times(rsa_key: PrivateKey) -> None:
    # Java-era tokens may lack iat/exp; the lifetime says "absent" rather than inventing numbers.
    pairs = request_pairs("GET", "/x", [("Authorization", AUTH)])
    claims = {"edts": compute_edts(v for _, v in pairs), "ehts": "Authorization;uri;http-method"}
    token = sign_compact(b64url_encode(b'{"alg":"RS256"}'), claims, rsa_key)
    request = {"method": "GET", "uri": "/x", "headers": [("Authorization", AUTH)]}
    result = explain_pop(token, now=NOW, policy=JAVA_COMPAT, **request)  # type: ignore[arg-type]
    assert result.matches
    assert result.lifetime.iat is None
    assert result.lifetime.age is None
    assert result.lifetime.lifetime is None
    with pytest.raises(PopMalformedError):
        explain_pop(token, now=NOW, **request)  # type: ignore[arg-type]
