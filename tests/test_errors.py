"""The error tree: every A6 row has a class that renders its own wire form."""

from __future__ import annotations

import pytest

import taap.errors as errors
from taap.errors import TaapError, error_from_wire

# TAAP.md A6, row by row: (class, status, error, error_code)
A6_TABLE = [
    (errors.MethodNotAllowedError, 405, "invalid_request", "method_not_allowed"),
    (errors.NotFoundError, 404, "invalid_request", "not_found"),
    (errors.BodyTooLargeError, 413, "invalid_request", "body_too_large"),
    (errors.HeadersTooLargeError, 431, "invalid_request", "headers_too_large"),
    (errors.ContentTypeError, 415, "invalid_request", "content_type_unsupported"),
    (errors.RequestMalformedError, 400, "invalid_request", "request_malformed"),
    (errors.RequestTimeoutError, 408, "invalid_request", "request_timeout"),
    (errors.ClientAuthError, 401, "invalid_client", "client_auth_failed"),
    (errors.RateLimitedError, 429, "slow_down", "rate_limited"),
    (errors.BodyInvalidError, 400, "invalid_request", "body_invalid"),
    (errors.GrantTypeUnsupportedError, 400, "unsupported_grant_type", "grant_type_unsupported"),
    (errors.ScopeInvalidError, 400, "invalid_scope", "scope_invalid"),
    (errors.PopMissingError, 401, "invalid_request", "pop_missing"),
    (errors.PopMalformedError, 401, "invalid_request", "pop_malformed"),
    (errors.PopSignatureError, 401, "invalid_client", "pop_signature_invalid"),
    (errors.PopExpiredError, 401, "invalid_request", "pop_expired"),
    (errors.PopCoverageError, 401, "invalid_request", "pop_ehts_insufficient"),
    (errors.PopDigestError, 401, "invalid_request", "pop_edts_mismatch"),
    (errors.PopReplayedError, 401, "invalid_request", "pop_replayed"),
    (errors.NotSubscribedError, 403, "access_denied", "not_subscribed"),
    (errors.TokenInvalidError, 401, "invalid_token", "token_invalid"),
    (errors.TokenRevokedError, 401, "invalid_token", "token_revoked"),
    (errors.UpstreamUnavailableError, 502, "temporarily_unavailable", "upstream_unavailable"),
    (errors.UpstreamTimeoutError, 504, "temporarily_unavailable", "upstream_timeout"),
    (errors.UnavailableError, 503, "temporarily_unavailable", "unavailable"),
]


@pytest.mark.parametrize(("cls", "status", "error", "code"), A6_TABLE)
def test_wire_form_matches_a6(cls: type[TaapError], status: int, error: str, code: str) -> None:
    err = cls(log_detail="operator-only detail")
    assert isinstance(err, TaapError)
    assert err.status_code == status
    body = err.to_dict()
    assert body["error"] == error
    assert body["error_code"] == code
    assert body["error_description"]
    # the operator detail never reaches the wire
    assert "operator-only" not in str(body)


@pytest.mark.parametrize(("cls", "status", "error", "code"), A6_TABLE)
def test_round_trip_through_the_wire(
    cls: type[TaapError], status: int, error: str, code: str
) -> None:
    rebuilt = error_from_wire(status, cls("why").to_dict())
    assert type(rebuilt) is cls
    assert rebuilt.description == "why"


def test_unavailable_carries_retry_after() -> None:
    assert errors.UnavailableError().wire_headers() == {"Retry-After": "1"}
    assert errors.RateLimitedError(retry_after=7).wire_headers() == {"Retry-After": "7"}


def test_unknown_code_keeps_what_the_server_said() -> None:
    err = error_from_wire(418, {"error": "teapot", "error_code": "brewing"})
    assert type(err) is TaapError
    assert (err.status_code, err.error, err.error_code) == (418, "teapot", "brewing")


def test_error_description_is_wire_safe() -> None:
    # RFC 6749 5.2: no '"', '\\' or control characters in error_description.
    for cls, *_ in A6_TABLE:
        text = cls().description
        assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text), cls
