"""Raw HTTP pasted as a request (parse_http, parse_captured) and the code a server would answer
for an explained PoP (Explanation.error_code), including a method changed after signing."""

from __future__ import annotations

import pytest

from taap.core import (
    PrivateKey,
    build_pop_token,
    explain_pop,
    parse_captured,
    parse_http,
    request_pairs,
)

NOW = 1_760_000_000
AUTH = "Bearer a.b.c"


def test_raw_http_with_crlf_and_an_absolute_target() -> None:
    text = (
        "POST https://api.example/sms/v1/messages?a=1 HTTP/1.1\r\nHost: api.example\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\r\n"
    )
    request = parse_http(text)
    assert request.method == "POST"
    assert request.uri == "/sms/v1/messages?a=1"
    assert request.headers[1] == ("Content-Type", "application/json")
    assert request.body == b"{}"  # cut to Content-Length, as a server reads it


def test_raw_http_with_lf_no_body_and_pseudo_headers() -> None:
    request = parse_http("\nGET /v1/x HTTP/2\n:authority: api.example\nAccept:  */* \n")
    assert (request.method, request.uri, request.body) == ("GET", "/v1/x", b"")
    assert request.headers == (("Accept", "*/*"),)


def test_a_body_without_content_length_is_kept_whole() -> None:
    request = parse_http("PUT /v1/x HTTP/1.1\nContent-Type: text/plain\n\nline 1\nline 2\n")
    assert request.body == b"line 1\nline 2\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "request line"),
        ("hello world, this is not HTTP", "request line"),
        ("GET /x HTTP/1.1\nno colon here\n", "is not 'Name: value'"),
    ],
)
def test_bad_raw_http_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_http(text)


def test_parse_captured_picks_curl_or_raw_http() -> None:
    assert parse_captured("  curl -X DELETE http://h/v1/x\n").method == "DELETE"
    assert parse_captured("PATCH /v1/x HTTP/1.1\n\n").method == "PATCH"


def _token(key: PrivateKey, method: str = "POST", at: int = NOW) -> str:
    headers = [("Authorization", AUTH), ("Content-Type", "application/json")]
    pairs = request_pairs(method, "/v1/x", headers, b"{}")
    return build_pop_token(pairs, key, now=at, jti="j")


def _explain(token: str, method: str = "POST", **extra: object) -> object:
    headers = [("Authorization", AUTH), ("Content-Type", "application/json")]
    return explain_pop(
        token, method=method, uri="/v1/x", headers=headers, body=b"{}", now=NOW + 1, **extra
    )  # type: ignore[arg-type]


def test_error_code_follows_the_order_of_the_checks(
    rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    assert _explain(_token(rsa_key)).error_code is None  # type: ignore[attr-defined]
    changed = _explain(_token(rsa_key), method="PUT")
    assert changed.error_code == "pop_edts_mismatch"  # type: ignore[attr-defined]
    assert [f.kind for f in changed.findings] == ["method"]  # type: ignore[attr-defined]
    assert "the method 'POST', but the request was sent as 'PUT'" in (
        changed.findings[0].message  # type: ignore[attr-defined]
    )
    old = _explain(_token(rsa_key, at=NOW - 600), method="PUT")
    assert old.error_code == "pop_expired"  # type: ignore[attr-defined]
    wrong_key = _explain(_token(rsa_key, at=NOW - 600), public_key=other_key.public)
    assert wrong_key.error_code == "pop_signature_invalid"  # type: ignore[attr-defined]
