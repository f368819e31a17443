"""One plain sentence per ``error_code`` a token server or guard answers: what it usually
means and what to do. Shown beside a failed step on the Try it page (docs/portal.md)."""

from __future__ import annotations

__all__ = ["EXPLANATIONS"]

EXPLANATIONS: dict[str, str] = {
    "client_auth_failed": (
        "The client ID and secret did not match a registered, active app. Check the secret "
        "(it was shown once, when the app was created or rotated); rotate it if it is lost."
    ),
    "rate_limited": "Too many requests or failed sign-ins in a short time: wait and retry.",
    "pop_missing": "The request carried no PoP in X-Authorization.",
    "pop_malformed": (
        "The PoP is not a well-formed token (three base64url parts, the required claims)."
    ),
    "pop_signature_invalid": (
        "The PoP's signature does not verify under any public key registered for this app: "
        "the private key is not the one whose public key is on the app page."
    ),
    "pop_expired": (
        "The PoP is outside its lifetime, or its iat is too far from the server's clock: "
        "build a fresh one and check the computer's clock."
    ),
    "pop_ehts_insufficient": (
        "The PoP does not sign what the server requires (Authorization, uri, http-method, and "
        "body when there is one)."
    ),
    "pop_edts_mismatch": (
        "The request sent is not the one signed: a header value, the uri, the method or the "
        "body differs from what the PoP's digest covers."
    ),
    "pop_replayed": "This PoP was used before: every request needs a PoP with a new jti.",
    "not_subscribed": (
        "The app does not subscribe to a product served here (or the subscription waits for "
        "an operator's approval)."
    ),
    "token_invalid": "The Bearer access token is not valid here (expired, or not this server's).",
    "token_revoked": "The access token was revoked, or its app was disabled.",
    "content_type_unsupported": "The Content-Type is not one this endpoint accepts.",
    "body_invalid": "The request body is not what this endpoint expects.",
    "request_malformed": "The request could not be read as sent (an ambiguous path or query).",
    "not_found": "There is no such resource.",
    "unavailable": "The server cannot answer now (a store or the registry is down): retry.",
}
