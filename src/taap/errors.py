"""The whole `taap` error tree. Every error knows its wire form (docs/server.md).

::

    TaapError                              status 500, server_error / internal
    ├── ConfigurationError (ValueError)    bad settings at start-up
    ├── KeyFormatError (ValueError)        unparseable, unsupported or weak key material
    ├── PopBuildError (ValueError)         the builder refuses its input
    ├── MethodNotAllowedError              405 method_not_allowed
    ├── NotFoundError                      404 not_found
    ├── BodyTooLargeError                  413 body_too_large
    ├── HeadersTooLargeError               431 headers_too_large
    ├── ContentTypeError                   415 content_type_unsupported
    ├── RequestMalformedError              400 request_malformed
    ├── RequestTimeoutError                408 request_timeout (the listener, not an app)
    ├── BodyInvalidError                   400 body_invalid
    ├── GrantTypeUnsupportedError          400 grant_type_unsupported
    ├── ScopeInvalidError                  400 scope_invalid
    ├── ClientAuthError                    401 client_auth_failed
    ├── RateLimitedError                   429 rate_limited (+ Retry-After)
    ├── PopError                           401, the PoP verification failures
    │   ├── PopMissingError                pop_missing
    │   ├── PopMalformedError              pop_malformed
    │   ├── PopSignatureError              pop_signature_invalid
    │   ├── PopExpiredError                pop_expired
    │   ├── PopCoverageError               pop_ehts_insufficient
    │   ├── PopDigestError                 pop_edts_mismatch
    │   └── PopReplayedError               pop_replayed
    ├── NotSubscribedError                 403 not_subscribed
    ├── TokenInvalidError                  401 token_invalid (guard: Bearer token)
    │   └── UnknownKeyIdError              same wire form; the token's kid is not known
    ├── TokenRevokedError                  401 token_revoked (revoked, or its client disabled)
    ├── UnavailableError                   503 unavailable (+ Retry-After)
    ├── UpstreamUnavailableError           502 upstream_unavailable (gateway)
    ├── UpstreamTimeoutError               504 upstream_timeout (gateway)
    └── TransportError                     client side: the server could not be reached

The human text (``description``) is safe to show the caller: it never contains secrets,
tokens or key material. Details meant for operators go to ``log_detail`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BodyInvalidError",
    "BodyTooLargeError",
    "ClientAuthError",
    "ConfigurationError",
    "ContentTypeError",
    "GrantTypeUnsupportedError",
    "HeadersTooLargeError",
    "KeyFormatError",
    "MethodNotAllowedError",
    "NotFoundError",
    "NotSubscribedError",
    "PopBuildError",
    "PopCoverageError",
    "PopDigestError",
    "PopError",
    "PopExpiredError",
    "PopMalformedError",
    "PopMissingError",
    "PopReplayedError",
    "PopSignatureError",
    "RateLimitedError",
    "RequestMalformedError",
    "RequestTimeoutError",
    "ScopeInvalidError",
    "TaapError",
    "TokenInvalidError",
    "TokenRevokedError",
    "TransportError",
    "UnavailableError",
    "UnknownKeyIdError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "error_from_wire",
]


class TaapError(Exception):
    """Root of every error raised by `taap`."""

    status_code: ClassVar[int] = 500
    error: ClassVar[str] = "server_error"
    error_code: ClassVar[str] = "internal"
    default_description: ClassVar[str] = "internal error"
    #: The client a refusal concerns, when the refuser knew it (for the audit and the usage
    #: counts; never sent to the caller).
    client_id: str | None = None

    def __init__(
        self,
        description: str | None = None,
        *,
        log_detail: str | None = None,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.description = description or self.default_description
        #: operator-only detail; never sent to the caller
        self.log_detail = log_detail
        self.retry_after = retry_after
        self.extra_headers = dict(headers or {})
        super().__init__(self.description)

    def to_dict(self) -> dict[str, str]:
        """The JSON error body."""
        return {
            "error": self.error,
            "error_description": self.description,
            "error_code": self.error_code,
        }

    def wire_headers(self) -> dict[str, str]:
        """Response headers that go with this error (Retry-After and the like)."""
        headers = dict(self.extra_headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class ConfigurationError(TaapError, ValueError):
    """Settings or start-up inputs are invalid."""

    error_code = "configuration_error"
    default_description = "invalid configuration"


class KeyFormatError(TaapError, ValueError):
    """Key material cannot be loaded, is not RSA, or is weaker than 2048 bits."""

    status_code = 400
    error = "invalid_request"
    error_code = "key_invalid"
    default_description = "invalid key"


class PopBuildError(TaapError, ValueError):
    """The PoP builder refuses its input (docs/protocol.md#the-pop-token: empty map, blank names,
    ';' ...)."""

    status_code = 400
    error = "invalid_request"
    error_code = "pop_build_refused"
    default_description = "cannot build a PoP token from this input"


class MethodNotAllowedError(TaapError):
    status_code = 405
    error = "invalid_request"
    error_code = "method_not_allowed"
    default_description = "method not allowed"


class NotFoundError(TaapError):
    status_code = 404
    error = "invalid_request"
    error_code = "not_found"
    default_description = "not found"


class BodyTooLargeError(TaapError):
    status_code = 413
    error = "invalid_request"
    error_code = "body_too_large"
    default_description = "request body too large"


class HeadersTooLargeError(TaapError):
    status_code = 431
    error = "invalid_request"
    error_code = "headers_too_large"
    default_description = "request headers too large"


class ContentTypeError(TaapError):
    status_code = 415
    error = "invalid_request"
    error_code = "content_type_unsupported"
    default_description = "Content-Type must be application/json"


class RequestMalformedError(TaapError):
    status_code = 400
    error = "invalid_request"
    error_code = "request_malformed"
    default_description = "malformed request"


class RequestTimeoutError(TaapError):
    """The request head or body arrived too slowly; answered by the listener itself."""

    status_code = 408
    error = "invalid_request"
    error_code = "request_timeout"
    default_description = "the request arrived too slowly"


class BodyInvalidError(TaapError):
    status_code = 400
    error = "invalid_request"
    error_code = "body_invalid"
    default_description = "invalid request body"


class GrantTypeUnsupportedError(TaapError):
    status_code = 400
    error = "unsupported_grant_type"
    error_code = "grant_type_unsupported"
    default_description = "grant-type must be client_credentials"


class ScopeInvalidError(TaapError):
    status_code = 400
    error = "invalid_scope"
    error_code = "scope_invalid"
    default_description = "scope must be response_mode"


class ClientAuthError(TaapError):
    status_code = 401
    error = "invalid_client"
    error_code = "client_auth_failed"
    default_description = "client authentication failed"


class RateLimitedError(TaapError):
    status_code = 429
    error = "slow_down"
    error_code = "rate_limited"
    default_description = "too many failed authentications; retry later"


class PopError(TaapError):
    """A PoP token failed one of the checks of docs/protocol.md#verifying-a-pop."""

    status_code = 401
    error = "invalid_request"
    error_code = "pop_invalid"
    default_description = "invalid PoP token"


class PopMissingError(PopError):
    error_code = "pop_missing"
    default_description = "X-Authorization (PoP token) is missing"


class PopMalformedError(PopError):
    error_code = "pop_malformed"
    default_description = "PoP token is malformed"


class PopSignatureError(PopError):
    error = "invalid_client"
    error_code = "pop_signature_invalid"
    default_description = "PoP signature does not verify with a registered key"


class PopExpiredError(PopError):
    error_code = "pop_expired"
    default_description = "PoP token expired, not yet valid, or too old"


class PopCoverageError(PopError):
    error_code = "pop_ehts_insufficient"
    default_description = "PoP token does not cover the required request parts"


class PopDigestError(PopError):
    error_code = "pop_edts_mismatch"
    default_description = "PoP edts does not match the request"


class PopReplayedError(PopError):
    error_code = "pop_replayed"
    default_description = "PoP token already used"


class NotSubscribedError(TaapError):
    status_code = 403
    error = "access_denied"
    error_code = "not_subscribed"
    default_description = "client is not subscribed to this API"


class TokenInvalidError(TaapError):
    status_code = 401
    error = "invalid_token"
    error_code = "token_invalid"
    default_description = "access token is missing or invalid"


class TokenRevokedError(TaapError):
    """The access token was revoked, or its client disabled, after it was issued."""

    status_code = 401
    error = "invalid_token"
    error_code = "token_revoked"
    default_description = "access token has been revoked"


class UnknownKeyIdError(TokenInvalidError):
    """The access token names a ``kid`` the verifier does not know (a JWKS refresh may help)."""


class UnavailableError(TaapError):
    status_code = 503
    error = "temporarily_unavailable"
    error_code = "unavailable"
    default_description = "service temporarily unavailable"

    def __init__(
        self,
        description: str | None = None,
        *,
        log_detail: str | None = None,
        retry_after: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            description, log_detail=log_detail, retry_after=retry_after, headers=headers
        )


class UpstreamUnavailableError(TaapError):
    """Gateway: the upstream refused the connection, or broke off before answering."""

    status_code = 502
    error = "temporarily_unavailable"
    error_code = "upstream_unavailable"
    default_description = "the API behind the gateway could not be reached"


class UpstreamTimeoutError(TaapError):
    """Gateway: the upstream did not answer within the gateway's upstream timeout."""

    status_code = 504
    error = "temporarily_unavailable"
    error_code = "upstream_timeout"
    default_description = "the API behind the gateway did not answer in time"


class TransportError(TaapError):
    """Client side: the server could not be reached or answered something unusable."""

    status_code = 503
    error = "temporarily_unavailable"
    error_code = "transport_error"
    default_description = "could not reach the server"


def _wire_classes() -> dict[str, type[TaapError]]:
    found: dict[str, type[TaapError]] = {}
    pending: list[type[TaapError]] = [TaapError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.error_code, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _wire_classes()


def error_from_wire(
    status_code: int, body: Mapping[str, Any], *, retry_after: int | None = None
) -> TaapError:
    """Rebuild the typed error a server described in its JSON error body.

    An unknown ``error_code`` gives a plain ``TaapError`` carrying the server's fields.
    """
    code = body.get("error_code")
    description = body.get("error_description")
    text = description if isinstance(description, str) else None
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None or cls is TaapError:
        err = TaapError(text or f"server answered HTTP {status_code}", retry_after=retry_after)
        # keep what the server said, even when this version does not know the code
        err.status_code = status_code  # type: ignore[misc]
        err.error = str(body.get("error", "server_error"))  # type: ignore[misc]
        err.error_code = str(code or "unknown")  # type: ignore[misc]
        return err
    return cls(text, retry_after=retry_after)
