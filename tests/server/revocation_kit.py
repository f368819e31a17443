"""Requests to the revocation and introspection endpoints, built by hand (every byte visible)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from kit.wire import basic
from taap.core import PrivateKey, build_pop_token, request_pairs

REVOKE = "/oauth2/v1/revoke"
INTROSPECT = "/oauth2/v1/introspect"
FEED = "/oauth2/v1/revocations"
FORM = "application/x-www-form-urlencoded"


def token_body(token: str, *, form: bool = True, hint: str | None = None) -> tuple[str, bytes]:
    """``(content type, body)`` naming ``token``: RFC 7009's form, or TAAP's JSON."""
    fields = {"token": token} | ({"token_type_hint": hint} if hint else {})
    if form:
        return FORM, urlencode(fields).encode("ascii")
    return "application/json", json.dumps(fields).encode("ascii")


def revoke_request(
    client_id: str,
    secret: str,
    key: PrivateKey,
    token: str,
    *,
    form: bool = True,
    hint: str | None = None,
    now: float | None = None,
    jti: str | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a revocation: Basic and a PoP over the exact request."""
    media, default_body = token_body(token, form=form, hint=hint)
    content = default_body if body is None else body
    base = [("Content-Type", content_type or media), ("Authorization", basic(client_id, secret))]
    pop = build_pop_token(request_pairs("POST", REVOKE, base, content), key, now=now, jti=jti)
    return {**dict(base), "X-Authorization": pop}, content


def introspect_request(
    rs_id: str, secret: str, token: str, *, form: bool = True
) -> tuple[dict[str, str], bytes]:
    """Headers and body of an introspection with a resource server's Basic credentials."""
    media, body = token_body(token, form=form)
    return {"Content-Type": media, "Authorization": basic(rs_id, secret)}, body
