"""The common PoP mistakes the Explain a PoP page must name: a real PoP signed over one request,
pasted with the request as it was (wrongly) sent. Shared by the HTTP and the Chromium tests.

Each case gives the token, the pasted request (a curl command line or raw HTTP), whether the
app's key or another registered key is chosen, the verdict that must open the Result region,
and a phrase of the Result that names the difference.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from kit.jose import forge
from taap.core import PrivateKey, build_pop_token, request_pairs

URL = "https://api.example.test/sms/v1/messages"
PATH = "/sms/v1/messages"
AUTH = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2ln"
BODY = {"to": "+14255550100", "text": "hello from the portal"}
COMPACT = json.dumps(BODY, separators=(",", ":"))
SPACED = json.dumps(BODY)  # what a Python client re-serialising the body sends


@dataclass(frozen=True)
class Case:
    name: str
    token: str
    request: str
    verdict: str
    names: str  # a phrase the Result region must contain
    key: str = ""  # "" no key chosen, "own" the signing key, "other" another registered key


def curl(
    method: str = "POST",
    url: str = URL,
    body: str = COMPACT,
    ctype: str = "application/json",
    token: str = "<PoP>",
) -> str:
    parts = ["curl", "-X", method, url, "-H", f"Authorization: {AUTH}"]
    parts += ["-H", f"Content-Type: {ctype}", "-H", f"X-Authorization: {token}"]
    parts += ["--data-raw", body]
    return " ".join(shlex.quote(p) for p in parts)


def raw_http(body: str = COMPACT, method: str = "POST", target: str = PATH) -> str:
    return (
        f"{method} {target} HTTP/1.1\nHost: api.example.test\nAuthorization: {AUTH}\n"
        f"Content-Type: application/json\n\n{body}"
    )


def sign(
    key: PrivateKey,
    now: int,
    *,
    method: str = "POST",
    uri: str = PATH,
    body: str = COMPACT,
    ctype: str = "application/json",
    ttl: int = 60,
    jti: str = "5d2f1c9e-0b7a-4c1e-9a55-2f0c7e3b8d41",
) -> str:
    headers = [("Authorization", AUTH), ("Content-Type", ctype)]
    pairs = request_pairs(method, uri, headers, body.encode())
    return build_pop_token(pairs, key, now=now, ttl=ttl, jti=jti)


def cases(key: PrivateKey, now: int) -> list[Case]:
    """The table: the valid request first, then one case per common mistake."""
    good = sign(key, now)
    claims = {
        "edts": "x" * 43,
        "v": "1",
        "exp": now + 60,
        "ehts": "Authorization;Content-Type;uri;http-method;body",
        "iat": now,
        "jti": "",
    }
    return [
        Case("valid (curl)", good, curl(), "Valid", "The request matches its PoP"),
        Case("valid (raw HTTP)", good, raw_http(), "Valid", "The request matches its PoP"),
        Case(
            "re-serialised body",
            good,
            curl(body=SPACED),
            "Refused: pop_edts_mismatch",
            "JSON body re-serialised",
        ),
        Case(
            "missing query",
            sign(key, now),
            curl(url=URL + "?priority=high"),
            "Refused: pop_edts_mismatch",
            "the uri without its query",
        ),
        Case(
            "header value changed",
            good,
            curl(ctype="application/json; charset=utf-8"),
            "Refused: pop_edts_mismatch",
            "header 'Content-Type' without its parameters",
        ),
        Case(
            "method changed",
            good,
            curl(method="PUT"),
            "Refused: pop_edts_mismatch",
            "the method 'POST', but the request was sent as 'PUT'",
        ),
        Case(
            "expired",
            sign(key, now - 300),
            curl(),
            "Refused: pop_expired",
            "PoP token expired",
        ),
        Case(
            "replayed jti format (empty jti)",
            forge({"alg": "RS256", "typ": "JWT"}, claims, key),
            curl(),
            "Refused: pop_malformed",
            "jti must be a non-empty string",
        ),
        Case(
            "wrong key",
            good,
            curl(),
            "Refused: pop_signature_invalid",
            "the signature does not verify",
            key="other",
        ),
        Case(
            "valid, signature checked",
            good,
            raw_http(),
            "Valid",
            "the signature verifies with the chosen key",
            key="own",
        ),
    ]
