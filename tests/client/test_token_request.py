"""Steps 1-2 sans I/O: the token request, its PoP, the curl form, the response parsing."""

from __future__ import annotations

import base64
import json
import time

import pytest

from taap.client import (
    ClientCredentials,
    RetryPolicy,
    TokenEndpoint,
    build_token_request,
    curl_command,
    endpoint_version,
    error_from_response,
    parse_expires_in,
    parse_retry_after,
    token_from_response,
)
from taap.core import request_parts, verify_pop_token
from taap.errors import (
    ClientAuthError,
    NotSubscribedError,
    PopExpiredError,
    RateLimitedError,
    TaapError,
    TransportError,
    UnavailableError,
)

from .conftest import CLIENT_ID, SECRET

V2 = "https://naas.example.test/oauth2/v2/tokens"
V6 = "https://api.example.test/oauth2/v6/tokens"


def _verify(prepared: object, credentials: ClientCredentials, now: float) -> list[str]:
    from taap.client import PreparedRequest

    assert isinstance(prepared, PreparedRequest)
    headers = dict(prepared.headers)
    path = prepared.url.split("example.test", 1)[1]
    parts = request_parts("POST", path, "", list(prepared.headers), prepared.body)
    verified = verify_pop_token(
        headers["X-Authorization"], keys=[credentials.key.public], request=parts, now=now
    )
    return list(verified.names)


@pytest.mark.parametrize(
    ("url", "version"),
    [
        (V2, "v2"),
        (V6, "v6"),
        ("https://h/oauth2/v6/tokens/", "v6"),
        ("https://h/custom/tokens", "v2"),
        ("https://h/oauth2/v6/tokens?x=1", "v6"),
        ("https://h/v6/tokensX", "v2"),
    ],
)
def test_version_follows_the_url_path(url: str, version: str) -> None:
    assert endpoint_version(url) == version


def test_version_can_be_forced() -> None:
    assert TokenEndpoint(url=V2, version="v6").effective_version == "v6"
    assert TokenEndpoint(url=V6, version="v2").effective_version == "v2"


def test_v2_request_signs_default_coverage_with_an_empty_body(
    credentials: ClientCredentials,
) -> None:
    now = time.time()
    prepared = build_token_request(TokenEndpoint(url=V2), credentials, now=now)
    headers = dict(prepared.headers)
    assert prepared.method == "POST"
    assert prepared.body == b""
    assert headers["Content-Type"] == "application/json"
    expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert _verify(prepared, credentials, now) == [
        "Content-Type",
        "Authorization",
        "uri",
        "http-method",
    ]


def test_basic_header_matches_the_seed_example(credentials: ClientCredentials) -> None:
    from taap.client import Secret, basic_authorization

    assert basic_authorization("123", Secret("abc")) == "Basic MTIzOmFiYw=="


def test_v6_request_carries_and_signs_the_json_body(credentials: ClientCredentials) -> None:
    now = time.time()
    endpoint = TokenEndpoint(url=V6, store_id="store-7", dealer_code="D42")
    prepared = build_token_request(endpoint, credentials, now=now)
    assert json.loads(prepared.body) == {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "response_mode",
        "grant-type": "client_credentials",
        "storeId": "store-7",
        "dealerCode": "D42",
    }
    assert _verify(prepared, credentials, now)[-1] == "body"


def test_each_request_has_a_fresh_pop(credentials: ClientCredentials) -> None:
    first = dict(build_token_request(TokenEndpoint(url=V2), credentials).headers)
    second = dict(build_token_request(TokenEndpoint(url=V2), credentials).headers)
    assert first["X-Authorization"] != second["X-Authorization"]


def test_pop_lifetime_is_60_seconds(credentials: ClientCredentials) -> None:
    now = time.time()
    prepared = build_token_request(TokenEndpoint(url=V2), credentials, now=now)
    with pytest.raises(PopExpiredError):
        _verify(prepared, credentials, now + 61 + 10)


def test_context_fields_need_v6() -> None:
    with pytest.raises(ValueError, match="storeId"):
        TokenEndpoint(url=V2, store_id="s")
    with pytest.raises(ValueError, match="dealerCode"):
        TokenEndpoint(url=V6, dealer_code="x" * 65)
    with pytest.raises(ValueError, match="absolute"):
        TokenEndpoint(url="/oauth2/v2/tokens")


def test_curl_command_has_the_seed_form(credentials: ClientCredentials) -> None:
    prepared = build_token_request(TokenEndpoint(url=V2), credentials)
    headers = dict(prepared.headers)
    assert curl_command(prepared).split("\n") == [
        f"curl --location --request POST '{V2}' \\",
        "--header 'Content-Type: application/json' \\",
        f"--header '{'Authorization: ' + headers['Authorization']}' \\",
        f"--header 'X-Authorization: {headers['X-Authorization']}' \\",
        "--data-raw ''",
    ]


def test_curl_command_v6_quotes_the_body(credentials: ClientCredentials) -> None:
    endpoint = TokenEndpoint(url=V6, store_id="O'Brien")
    prepared = build_token_request(endpoint, credentials)
    last = curl_command(prepared).split("\n")[-1]
    assert last.startswith('--data-raw \'{"client_id":')
    assert "O'\\''Brien" in last


@pytest.mark.parametrize(
    ("value", "seconds"), [("3599", 3599), (3599, 3599), (3599.9, 3599), (" 60 ", 60), (0, 0)]
)
def test_expires_in_string_or_number(value: object, seconds: int) -> None:
    assert parse_expires_in(value) == seconds


@pytest.mark.parametrize("value", [None, True, "-1", -5, "abc", "1e9", float("inf"), [], ""])
def test_expires_in_refused(value: object) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        parse_expires_in(value)


def test_token_from_a_200() -> None:
    body = json.dumps(
        {"id_token": "i", "access_token": "a", "expires_in": "3599", "scope": "", "status": "ok"}
    ).encode()
    token = token_from_response(200, {}, body, obtained_at=1000.0)
    assert (token.access_token, token.id_token, token.expires_in) == ("a", "i", 3599)
    assert token.expires_at == 4599.0
    assert token.body == body


@pytest.mark.parametrize("body", [b"{}", b"[]", b"<html>", b'{"access_token": "a"}'])
def test_unusable_200_is_a_transport_error(body: bytes) -> None:
    with pytest.raises(TransportError):
        token_from_response(200, {}, body, obtained_at=0.0)


def _a6(code: str, error: str = "invalid_request") -> bytes:
    return json.dumps({"error": error, "error_description": "d", "error_code": code}).encode()


def test_a6_errors_become_typed_exceptions() -> None:
    assert isinstance(error_from_response(401, {}, _a6("client_auth_failed")), ClientAuthError)
    assert isinstance(error_from_response(403, {}, _a6("not_subscribed")), NotSubscribedError)
    limited = error_from_response(429, {"retry-after": "7"}, _a6("rate_limited", "slow_down"))
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 7
    with pytest.raises(ClientAuthError):
        token_from_response(401, {}, _a6("client_auth_failed"), obtained_at=0)


def test_unknown_code_keeps_the_servers_fields() -> None:
    err = error_from_response(418, {}, _a6("teapot", "brewing"))
    assert type(err) is TaapError
    assert (err.status_code, err.error, err.error_code) == (418, "brewing", "teapot")


def test_non_a6_bodies_map_by_status() -> None:
    assert isinstance(error_from_response(502, {}, b"<html>bad gateway</html>"), TransportError)
    assert isinstance(error_from_response(503, {}, b""), UnavailableError)
    assert isinstance(error_from_response(429, {}, b""), RateLimitedError)
    plain = error_from_response(404, {}, b"<html>secret-looking page</html>")
    assert "secret-looking" not in str(plain)
    assert plain.status_code == 404


def test_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10


def test_retry_policy_backoff_and_bounds() -> None:
    policy = RetryPolicy(max_retries=4, base_delay=0.5, max_delay=2.0, max_retry_after=10)
    assert [policy.delay(n, None) for n in range(5)] == [0.5, 1.0, 2.0, 2.0, None]
    assert policy.delay(0, 3) == 3.0
    assert policy.delay(0, 11) is None
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_retries=-1)
