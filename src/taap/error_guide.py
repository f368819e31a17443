"""What each error a taap server answers means, its usual cause and its fix (docs/server.md).

The rows come from the error tree in :mod:`taap.errors` (every class a server can answer with,
one per ``error_code``), so a new error appears in the portal's Status codes page and the docs
on its own; the words for the cause and the fix live here, keyed by ``error_code``, in this one
place. ``tests/test_errors.py`` fails when a wire error has no words yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from taap import errors
from taap.errors import TaapError

__all__ = ["ErrorRow", "error_table", "wire_errors"]

#: Raised by the library or the tools, never answered by a server (or, for ``PopError``, only
#: ever answered through one of its subclasses).
_NOT_ON_THE_WIRE: frozenset[type[TaapError]] = frozenset(
    {
        errors.ConfigurationError,
        errors.KeyFormatError,
        errors.PopBuildError,
        errors.PopError,
        errors.TransportError,
    }
)

# error_code -> (usual cause, fix). Plain words for a developer whose call was refused.
_GUIDE: dict[str, tuple[str, str]] = {
    "method_not_allowed": (
        "The endpoint exists but not for this HTTP method (the token endpoints take POST only).",
        "Use the method the Allow header names.",
    ),
    "not_found": (
        "No endpoint or resource at this path: a typo in the URL, a wrong version, or an id "
        "that does not exist.",
        "Check the path against the API reference; the token endpoints are POST "
        "/oauth2/v2/tokens and /oauth2/v6/tokens.",
    ),
    "body_too_large": (
        "The request body is over the server's cap (1 MiB by default).",
        "Send a smaller body; an operator can raise TAAP_MAX_BODY.",
    ),
    "headers_too_large": (
        "The request's headers together are over the server's cap (16 KiB by default), often "
        "a huge cookie or token.",
        "Drop headers the API does not need.",
    ),
    "content_type_unsupported": (
        "The body's Content-Type is not one the endpoint reads (JSON for the token endpoints "
        "and the SMS API).",
        "Send Content-Type: application/json with a JSON body.",
    ),
    "request_malformed": (
        "The request cannot be read as one unambiguous request: a repeated singleton header, "
        "text that is not UTF-8, an access token in the query, a malformed path parameter.",
        "Send each header once, UTF-8 text, the token in the Authorization header.",
    ),
    "request_timeout": (
        "The request head or body arrived too slowly (a stalled client or a slow link).",
        "Send the whole request promptly; retry on a working connection.",
    ),
    "body_invalid": (
        "The body is not the JSON the endpoint expects (a missing or extra member, a wrong "
        "type, duplicate keys).",
        "Compare the body with the endpoint's schema in the API reference.",
    ),
    "grant_type_unsupported": (
        "The v6 body's grant-type is not client_credentials.",
        'Send "grant-type": "client_credentials".',
    ),
    "scope_invalid": (
        "The v6 body's scope is not response_mode.",
        'Send "scope": "response_mode".',
    ),
    "client_auth_failed": (
        "Wrong client ID or secret in the Basic credentials, a rotated secret past its grace "
        "period, or a disabled app.",
        "Copy the client ID from the app page; rotate the secret if it is lost.",
    ),
    "rate_limited": (
        "Too many failed authentications from this client or address.",
        "Wait for the seconds in Retry-After, then fix the credentials before retrying.",
    ),
    "pop_missing": (
        "No PoP token in the X-Authorization header.",
        "Build a PoP for every request and send it as X-Authorization.",
    ),
    "pop_malformed": (
        "The PoP is not a well-formed token: not three base64url parts, typ not JWT, a claim "
        "missing or of the wrong type (a jti that is empty or over 128 characters).",
        "Build the PoP with the SDK or the npm builder; paste it into Explain a PoP.",
    ),
    "pop_signature_invalid": (
        "The PoP was signed by a key that is not registered for the app (or, at an API, not "
        "the key bound to the access token), or the token was altered.",
        "Sign with the private key whose public key is on the app page; get a new access "
        "token after changing keys.",
    ),
    "pop_expired": (
        "The PoP is past its exp, issued in the future, lives longer than 120 s, or is older "
        "than 60 s: a PoP reused later, or a client clock that is off.",
        "Build a fresh PoP just before each request; keep the client's clock on NTP.",
    ),
    "pop_ehts_insufficient": (
        "The PoP signs a header the request lacks, or does not sign Authorization, uri, "
        "http-method (and body when there is one).",
        "Sign every required part and send every header the PoP names.",
    ),
    "pop_edts_mismatch": (
        "A signed value differs from the request as sent: the body re-serialised after "
        "signing, the query left out of uri, a header value or the method changed.",
        "Sign the exact bytes you send; paste the token and the request into Explain a PoP.",
    ),
    "pop_replayed": (
        "This PoP's jti was already used: a PoP is good for one request only.",
        "Build a new PoP (with a new jti) for every request, retries included.",
    ),
    "not_subscribed": (
        "The app is not subscribed to this API's product, or the subscription is still "
        "waiting for an operator's approval.",
        "Subscribe the app to the product; get a new access token after subscribing.",
    ),
    "token_invalid": (
        "The Bearer access token is missing, malformed, expired, signed by an unknown key, or "
        "issued for another server.",
        "Get a new access token at the token endpoint and send it as Authorization: Bearer.",
    ),
    "token_revoked": (
        "The access token was revoked, or its app was disabled, deleted or unsubscribed after "
        "it was issued.",
        "Get a new access token; if that fails, check the app's status on its page.",
    ),
    "unavailable": (
        "The server cannot answer now: a database, Redis or the token server's keys are "
        "unreachable, or the server is shutting down.",
        "Retry after the seconds in Retry-After; tell the operator if it lasts.",
    ),
    "upstream_unavailable": (
        "The gateway verified the call but could not reach the API behind it: the upstream "
        "refused the connection, broke it, or answered something that is not HTTP.",
        "Retry later; the operator checks the upstream named in the gateway's /readyz.",
    ),
    "upstream_timeout": (
        "The gateway verified the call but the API behind it did not answer within the "
        "gateway's upstream timeout (30 s by default).",
        "Retry later, idempotent calls only; the operator checks the slow upstream or raises "
        "--upstream-timeout.",
    ),
    "internal": (
        "An unexpected failure on the server; no client input is meant to cause one.",
        "Retry; if it repeats, give the operator the request id.",
    ),
}


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One row of the error table. ``cause`` and ``fix`` are empty for an error without words."""

    status: int
    error: str
    error_code: str
    meaning: str
    cause: str
    fix: str


def wire_errors() -> tuple[type[TaapError], ...]:
    """Every error class a server answers with, one per ``error_code``, in the tree's order
    (depth first, subclasses as defined), the catch-all ``internal`` last."""
    found: list[type[TaapError]] = []
    codes: set[str] = set()

    def walk(cls: type[TaapError]) -> None:
        for sub in cls.__subclasses__():
            # Only the tree itself: a program's own subclasses are not answers of a server.
            if sub.__module__ != errors.__name__:
                continue
            if sub not in _NOT_ON_THE_WIRE and sub.error_code not in codes:
                codes.add(sub.error_code)
                found.append(sub)
            walk(sub)

    walk(TaapError)
    return (*found, TaapError)


def error_table() -> tuple[ErrorRow, ...]:
    """The rows of the Status codes page (and of docs/server.md's table)."""
    rows = []
    for cls in wire_errors():
        cause, fix = _GUIDE.get(cls.error_code, ("", ""))
        rows.append(
            ErrorRow(
                status=cls.status_code,
                error=cls.error,
                error_code=cls.error_code,
                meaning=cls.default_description,
                cause=cause,
                fix=fix,
            )
        )
    return tuple(rows)
