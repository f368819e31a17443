"""Hostile requests to the token endpoints of a real ``taap serve`` process (TAAP.md A4, A6, A8).

Each case changes one thing in an otherwise valid request (or stacks two failures to pin which
check comes first) and asserts the exact status, ``error`` and ``error_code``, that no token was
issued (answer and audit log), that no replay key appeared in Redis, that only
``client_auth_failed`` / ``pop_signature_invalid`` moved the failed-auth buckets, and that the
registry's tables are unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from adversarial_kit import POP_HEADER, Arena, expect_refused, forge, http_request
from token_cases import Case, default_pairs, forged, token_request, v6_body

from kit.wire import basic
from taap.core import build_pop_token, generate_private_key, request_pairs
from taap.core._b64 import b64url_encode

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

MALFORMED = (401, "invalid_request", "pop_malformed")
EXPIRED = (401, "invalid_request", "pop_expired")
INSUFFICIENT = (401, "invalid_request", "pop_ehts_insufficient")
MISMATCH = (401, "invalid_request", "pop_edts_mismatch")
BAD_SIG = (401, "invalid_client", "pop_signature_invalid")
AUTH = (401, "invalid_client", "client_auth_failed")
REQ = (400, "invalid_request", "request_malformed")
BODY = (400, "invalid_request", "body_invalid")
ATTACKER = generate_private_key()
CANARY_SECRET = "canary-SECRET-4f1d2b"
SQLI_ID = "x' OR '1'='1' --"
# No ":" (Basic splits at the first one): a line break and JSON that would open a new line.
INJECTED_ID = 'x"}\r\n{"event"\u2028"token_issued"'


def c(name: str, build, expected: tuple[int, str, str], counted: str | None = None) -> Case:  # type: ignore[no-untyped-def]
    status, error, code = expected
    return Case(name, build, status, error, code, counted)


def with_pop(pop_of) -> object:  # type: ignore[no-untyped-def]
    """A v2 request of client a carrying the PoP ``pop_of(arena)``."""
    return lambda a: token_request(a, pop=pop_of(a))


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def flip_case(text: str) -> str:
    return text.swapcase()


def raw_v6(a: Arena, body: str, **kw: object) -> bytes:
    return token_request(a, version="v6", body=body, **kw)  # type: ignore[arg-type]


def _hs256_pop(a: Arena) -> str:
    # Algorithm confusion: HMAC keyed with the client's public key PEM (SECURITY.md S2).
    secret = a.clients["a"].key.public.to_pem()
    header = {"alg": "HS256", "typ": "JWT"}
    from adversarial_kit import pop_claims, segment

    signing = f"{segment(header)}.{segment(pop_claims(default_pairs(a)))}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64url_encode(mac)}"


def _claims_bytes(a: Arena, text: str) -> str:
    """A PoP whose payload segment is exactly ``text`` (after filling in the real edts/iat)."""
    from adversarial_kit import pop_claims

    good = pop_claims(default_pairs(a))
    filled = text.format(**{k: json.dumps(v) for k, v in good.items()})
    return forge(POP_HEADER, filled.encode(), a.clients["a"].key)


def _noncanonical_sig(a: Arena) -> str:
    token = forged(a)
    head, _, sig = token.rpartition(".")
    # 256 bytes -> 342 symbols, 4 unused bits: a different last symbol decoding to the same bytes.
    # The last symbol of a 342-symbol segment is one of "AQgw"; the next one differs only in
    # the unused bits.
    assert len(sig) == 342
    assert sig[-1] in "AQgw"
    return f"{head}.{sig[:-1]}{B64URL[B64URL.index(sig[-1]) + 1]}"


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _header_swapped(a: Arena) -> str:
    """Same claims and signature under a re-serialized header (member order changed)."""
    _, payload, sig = forged(a).split(".")
    header = b64url_encode(b'{"typ":"JWT","alg":"RS256"}')
    return f"{header}.{payload}.{sig}"


def _chunked(a: Arena, chunks: list[bytes], *, terminator: bytes = b"0\r\n\r\n") -> bytes:
    cl = a.clients["a"]
    pop = build_pop_token(default_pairs(a), cl.key)
    head = http_request(
        "POST",
        "/oauth2/v2/tokens",
        [
            ("Content-Type", "application/json"),
            ("Authorization", cl.basic),
            ("X-Authorization", pop),
            ("Transfer-Encoding", "chunked"),
        ],
        content_length=False,
    )
    body = b"".join(f"{len(ch):x}\r\n".encode() + ch + b"\r\n" for ch in chunks)
    return head + body + terminator


def _signed_with(a: Arena, pairs: list[tuple[str, str | bytes]], **kw: object) -> bytes:
    return token_request(a, signed=pairs, **kw)  # type: ignore[arg-type]


def _auth(a: Arena) -> str:
    return a.clients["a"].basic


def _ct_auth(a: Arena) -> list[tuple[str, str | bytes]]:
    return [("Content-Type", "application/json"), ("Authorization", _auth(a))]


NOW = time.time


CASES: list[Case] = [
    # --- HTTP shape: method, path, content type, duplicates, caps, UTF-8 --------------------
    c(
        "GET",
        lambda a: token_request(a, method="GET"),
        (405, "invalid_request", "method_not_allowed"),
    ),
    c(
        "PUT v6",
        lambda a: token_request(a, "a", "v6", method="PUT"),
        (405, "invalid_request", "method_not_allowed"),
    ),
    c(
        "DELETE",
        lambda a: token_request(a, method="DELETE"),
        (405, "invalid_request", "method_not_allowed"),
    ),
    c(
        "OPTIONS",
        lambda a: token_request(a, method="OPTIONS"),
        (405, "invalid_request", "method_not_allowed"),
    ),
    c(
        "PATCH",
        lambda a: token_request(a, method="PATCH"),
        (405, "invalid_request", "method_not_allowed"),
    ),
    # With --with-sample-apis every other path goes to the guard (docs/guard.md), which serves
    # no such path: 404 before any authentication, naming the token endpoints.
    Case(
        "v3 path",
        lambda a: token_request(a, target="/oauth2/v3/tokens"),
        404,
        "invalid_request",
        "not_found",
        surface="guard",
    ),
    c(
        "content-type text/plain",
        lambda a: token_request(a, ctype="text/plain"),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "content-type form",
        lambda a: token_request(
            a, ctype="application/x-www-form-urlencoded", body="grant_type=client_credentials"
        ),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "content-type jsonp",
        lambda a: token_request(a, ctype="application/jsonp"),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "content-type json+x",
        lambda a: token_request(a, ctype="application/json+x; charset=utf-8"),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "content-type missing",
        lambda a: http_request(
            "POST",
            "/oauth2/v2/tokens",
            [("Authorization", _auth(a)), ("X-Authorization", forged(a))],
        ),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "content-type twice json",
        lambda a: token_request(a, extra=[("Content-Type", "application/json")]),
        REQ,
    ),
    c(
        "content-type json and text",
        lambda a: token_request(a, extra=[("Content-Type", "text/plain")]),
        (415, "invalid_request", "content_type_unsupported"),
    ),
    c(
        "authorization twice",
        lambda a: token_request(a, extra=[("Authorization", basic("x", "y"))]),
        REQ,
    ),
    c(
        "authorization twice same",
        lambda a: token_request(a, extra=[("Authorization", _auth(a))]),
        REQ,
    ),
    c(
        "x-authorization twice",
        lambda a: token_request(a, extra=[("X-Authorization", forged(a))]),
        REQ,
    ),
    c(
        "authorization case-variant twice",
        lambda a: token_request(a, extra=[("AUTHORIZATION", _auth(a))]),
        REQ,
    ),
    c(
        "headers over 16 KiB",
        lambda a: token_request(a, extra=[("X-Pad", "p" * 17_000)]),
        (431, "invalid_request", "headers_too_large"),
    ),
    c(
        "300 small headers",
        lambda a: token_request(a, extra=[(f"X-H{i}", "v" * 50) for i in range(300)]),
        (431, "invalid_request", "headers_too_large"),
    ),
    c(
        "headers over cap beats bad method",
        lambda a: token_request(a, method="GET", extra=[("X-Pad", "p" * 17_000)]),
        (405, "invalid_request", "method_not_allowed"),
    ),
    c(
        "declared body over 1 MiB",
        lambda a: http_request(
            "POST",
            "/oauth2/v2/tokens",
            [
                ("Content-Type", "application/json"),
                ("Authorization", _auth(a)),
                ("Content-Length", str(2 << 20)),
            ],
            content_length=False,
        ),
        (413, "invalid_request", "body_too_large"),
    ),
    c(
        "chunked body over 1 MiB",
        lambda a: _chunked(a, [b" " * 65536] * 17),
        (413, "invalid_request", "body_too_large"),
    ),
    c(
        "body over cap beats bad content type",
        lambda a: token_request(a, ctype="text/plain", body="x" * ((1 << 20) + 1)),
        (413, "invalid_request", "body_too_large"),
    ),
    c(
        "invalid UTF-8 body",
        lambda a: token_request(a, body=b'{"a":"\xff\xfe"}', pop=forged(a)),
        REQ,
    ),
    c(
        "overlong UTF-8 body",
        lambda a: token_request(a, body=b'{"a":"\xc0\xaf"}', pop=forged(a)),
        REQ,
    ),
    c(
        "lone surrogate UTF-8 body",
        lambda a: token_request(a, body=b'{"a":"\xed\xa0\x80"}', pop=forged(a)),
        REQ,
    ),
    c(
        "invalid UTF-8 in X-Authorization",
        lambda a: token_request(a, pop=forged(a).encode() + b"\xff"),
        REQ,
    ),
    c("invalid UTF-8 in Authorization", lambda a: token_request(a, auth=b"Basic \xff\xfe"), REQ),
    c(
        "invalid UTF-8 in another header",
        lambda a: token_request(a, extra=[("X-Note", b"\xc3\x28")]),
        REQ,
    ),
    c("%2F in the token path", lambda a: token_request(a, target="/oauth2/v2%2Ftokens"), REQ),
    c("%26 in the token query", lambda a: token_request(a, target="/oauth2/v2/tokens?a=%26b"), REQ),
    c("%3D in the token query", lambda a: token_request(a, target="/oauth2/v2/tokens?a%3Db"), REQ),
    c(
        "%25 in the token query",
        lambda a: token_request(a, target="/oauth2/v2/tokens?a=%2541"),
        REQ,
    ),
    c(
        "UTF-8 check beats client auth",
        lambda a: token_request(a, auth=basic("nobody", "x"), body=b"\xff", pop=forged(a)),
        REQ,
    ),
    # --- the GET endpoints (JWKS, discovery, health): no audit line, same A6 answers -------
    Case(
        "POST to the JWKS",
        lambda a: http_request("POST", "/oauth2/v1/jwks", [("Content-Type", "application/json")]),
        405,
        "invalid_request",
        "method_not_allowed",
        audited=False,
    ),
    Case(
        "DELETE discovery",
        lambda a: http_request("DELETE", "/.well-known/openid-configuration", []),
        405,
        "invalid_request",
        "method_not_allowed",
        audited=False,
    ),
    Case(
        "readyz with 20 KB of headers",
        lambda a: http_request("GET", "/readyz", [("X-Pad", "p" * 20_000)]),
        431,
        "invalid_request",
        "headers_too_large",
        audited=False,
    ),
    # --- HTTP framing attacks the HTTP layer (uvicorn) refuses before the application --------
    Case(
        "bad chunk size",
        lambda a: _chunked(a, [b"{}"]).replace(b"2\r\n{}", b"zz\r\n{}"),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "Content-Length and chunked",
        lambda a: _chunked(a, [b"{}"]).replace(
            b"Transfer-Encoding", b"Content-Length: 2\r\nTransfer-Encoding"
        ),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "two different Content-Length",
        lambda a: token_request(a, extra=[("Content-Length", "5")]),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "NUL in a header value",
        lambda a: token_request(a, extra=[("X-Note", b"a\x00b")]),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "obs-fold header line",
        lambda a: token_request(a, extra=[("X-Note", b"a\r\n b")]),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "space before colon",
        lambda a: token_request(a, extra=[(b"X-Note ", b"a")]),
        400,
        None,
        None,
        audited=False,
    ),
    Case(
        "header line of 70 KiB",
        lambda a: token_request(a, extra=[("X-Pad", "p" * 70_000)]),
        431,
        "invalid_request",
        "headers_too_large",
    ),
    Case(
        "lower-case method",
        lambda a: token_request(a, method="post"),
        400,
        None,
        None,
        audited=False,
    ),
    # --- Basic auth parsing (401 client_auth_failed; counted) -----------------------------
    c(
        "no Authorization",
        lambda a: http_request(
            "POST",
            "/oauth2/v2/tokens",
            [("Content-Type", "application/json"), ("X-Authorization", forged(a))],
        ),
        AUTH,
        "",
    ),
    c("Basic without credentials", lambda a: token_request(a, auth="Basic"), AUTH, ""),
    c("Basic with empty credentials", lambda a: token_request(a, auth="Basic "), AUTH, ""),
    c("bad base64", lambda a: token_request(a, auth="Basic !!!notbase64!!!"), AUTH, ""),
    c(
        "base64 missing padding",
        lambda a: token_request(a, auth="Basic " + base64.b64encode(b"ab:cd").decode().rstrip("=")),
        AUTH,
        "",
    ),
    c(
        "base64 with inner space",
        lambda a: token_request(
            a,
            auth="Basic "
            + base64.b64encode(
                f"{a.clients['a'].client_id}:{a.clients['a'].secret}".encode()
            ).decode()[:8]
            + " "
            + base64.b64encode(
                f"{a.clients['a'].client_id}:{a.clients['a'].secret}".encode()
            ).decode()[8:],
        ),
        AUTH,
        "",
    ),
    c(
        "missing colon",
        lambda a: token_request(
            a, auth="Basic " + base64.b64encode(a.clients["a"].client_id.encode()).decode()
        ),
        AUTH,
        "",
    ),
    c(
        "empty client id",
        lambda a: token_request(a, auth=basic("", a.clients["a"].secret)),
        AUTH,
        "",
    ),
    c(
        "empty secret",
        lambda a: token_request(a, auth=basic(a.clients["a"].client_id, "")),
        AUTH,
        "",
    ),
    c("only a colon", lambda a: token_request(a, auth=basic("", "")), AUTH, ""),
    c(
        "credentials not UTF-8",
        lambda a: token_request(a, auth="Basic " + base64.b64encode(b"cl\xe9:s\xe9").decode()),
        AUTH,
        "",
    ),
    c(
        "non-ASCII UTF-8 in the header",
        lambda a: token_request(a, auth=("Basic é" + base64.b64encode(b"a:b").decode()).encode()),
        AUTH,
        "",
    ),
    c("Latin-1 byte in the header", lambda a: token_request(a, auth=b"Basic \xe9YTpi"), REQ),
    c(
        "client_id over 256 chars",
        lambda a: token_request(a, auth=basic("x" * 300, "secret")),
        AUTH,
        "",
    ),
    c(
        "scheme Bearer",
        lambda a: token_request(a, auth="Bearer " + a.tokens["a"]["access_token"]),
        AUTH,
        "",
    ),
    c("scheme Digest", lambda a: token_request(a, auth='Digest username="a"'), AUTH, ""),
    c(
        "scheme Basic glued",
        lambda a: token_request(a, auth="Basic" + base64.b64encode(b"a:b").decode()),
        AUTH,
        "",
    ),
    c(
        "wrong secret",
        lambda a: token_request(a, auth=basic(a.clients["a"].client_id, "wrong")),
        AUTH,
        "a",
    ),
    c(
        "wrong secret, scheme case bAsIc",
        lambda a: token_request(
            a,
            auth="bAsIc " + base64.b64encode(f"{a.clients['a'].client_id}:nope".encode()).decode(),
        ),
        AUTH,
        "a",
    ),
    c(
        "secret with trailing space",
        lambda a: token_request(
            a, auth=basic(a.clients["a"].client_id, a.clients["a"].secret + " ")
        ),
        AUTH,
        "a",
    ),
    c(
        "secret of client b",
        lambda a: token_request(a, auth=basic(a.clients["a"].client_id, a.clients["b"].secret)),
        AUTH,
        "a",
    ),
    c(
        "secret prefix",
        lambda a: token_request(
            a, auth=basic(a.clients["a"].client_id, a.clients["a"].secret[:-1])
        ),
        AUTH,
        "a",
    ),
    c(
        "unknown client",
        lambda a: token_request(a, auth=basic("taap-doesnotexist", "secret")),
        AUTH,
        "=taap-doesnotexist",
    ),
    c(
        "non-ASCII client id",
        lambda a: token_request(a, auth=basic("clïent", "sëcret")),
        AUTH,
        "=clïent",
    ),
    c(
        "client id with percent escape",
        lambda a: token_request(a, auth=basic("taap%2Dx", "s")),
        AUTH,
        "=taap%2Dx",
    ),
    c(
        "auth failure beats bad body",
        lambda a: token_request(
            a, "a", "v6", auth=basic(a.clients["a"].client_id, "bad"), body="[]"
        ),
        AUTH,
        "a",
    ),
    c(
        "auth failure beats missing PoP",
        lambda a: token_request(a, auth=basic(a.clients["a"].client_id, "bad"), no_pop=True),
        AUTH,
        "a",
    ),
    c(
        "X-Forwarded-For from an untrusted peer",
        lambda a: token_request(
            a,
            auth=basic(a.clients["a"].client_id, "bad"),
            extra=[("X-Forwarded-For", "203.0.113.9")],
        ),
        AUTH,
        "a",
    ),
    c(
        "SQL injection in the client id",
        lambda a: token_request(a, auth=basic(SQLI_ID, a.clients["a"].secret)),
        AUTH,
        "=" + SQLI_ID,
    ),
    c(
        "LIKE wildcards as the client id",
        lambda a: token_request(a, auth=basic("taap-%", a.clients["a"].secret)),
        AUTH,
        "=taap-%",
    ),
    c(
        "audit-line injection in the client id",
        lambda a: token_request(a, auth=basic(INJECTED_ID, CANARY_SECRET)),
        AUTH,
        "=" + INJECTED_ID,
    ),
    c(
        "canary secret for a real client",
        lambda a: token_request(a, auth=basic(a.clients["a"].client_id, CANARY_SECRET)),
        AUTH,
        "a",
    ),
    # --- v2 and v6 bodies -------------------------------------------------------------------
    c("v2 body null", lambda a: token_request(a, body="null"), BODY),
    c("v2 body array", lambda a: token_request(a, body="[]"), BODY),
    c("v2 body truncated", lambda a: token_request(a, body="{"), BODY),
    c("v2 body duplicate members", lambda a: token_request(a, body='{"a":1,"a":2}'), BODY),
    c("v2 body NaN", lambda a: token_request(a, body='{"a":NaN}'), BODY),
    c("v2 body 1e400", lambda a: token_request(a, body='{"a":1e400}'), BODY),
    c("v2 body 33 levels", lambda a: token_request(a, body='{"a":' + deep(32) + "}"), BODY),
    c("v2 body 100k levels", lambda a: token_request(a, body='{"a":' + deep(100_000) + "}"), BODY),
    c("v2 body with BOM", lambda a: token_request(a, body="\ufeff{}"), BODY),
    c("v2 body form", lambda a: token_request(a, body="grant_type=client_credentials"), BODY),
    c("v6 empty body", lambda a: raw_v6(a, ""), BODY),
    c("v6 body array", lambda a: raw_v6(a, "[]"), BODY),
    c("v6 missing client_id", lambda a: raw_v6(a, v6_body(a, client_id=...)), BODY),
    c("v6 missing client_secret", lambda a: raw_v6(a, v6_body(a, client_secret=...)), BODY),
    c("v6 missing scope", lambda a: raw_v6(a, v6_body(a, scope=...)), BODY),
    c("v6 missing grant-type", lambda a: raw_v6(a, v6_body(a, grant__type=...)), BODY),
    c("v6 empty grant-type", lambda a: raw_v6(a, v6_body(a, grant__type="")), BODY),
    c("v6 client_id number", lambda a: raw_v6(a, v6_body(a, client_id=12345)), BODY),
    c("v6 scope null", lambda a: raw_v6(a, v6_body(a, scope=None)), BODY),
    c(
        "v6 grant-type list",
        lambda a: raw_v6(a, v6_body(a, grant__type=["client_credentials"])),
        BODY,
    ),
    c("v6 duplicate client_id", lambda a: raw_v6(a, v6_body(a)[:-1] + ', "client_id": "x"}'), BODY),
    c(
        "v6 grant-type and grant_type differ",
        lambda a: raw_v6(a, v6_body(a, grant_type="password")),
        BODY,
    ),
    c("v6 storeId 65 chars", lambda a: raw_v6(a, v6_body(a, storeId="s" * 65)), BODY),
    c("v6 storeId 500 KB", lambda a: raw_v6(a, v6_body(a, storeId="s" * 500_000)), BODY),
    c("v6 storeId number", lambda a: raw_v6(a, v6_body(a, storeId=42)), BODY),
    c("v6 dealerCode object", lambda a: raw_v6(a, v6_body(a, dealerCode={"a": 1})), BODY),
    c("v6 NaN member", lambda a: raw_v6(a, v6_body(a)[:-1] + ', "x": NaN}'), BODY),
    c("v6 Infinity member", lambda a: raw_v6(a, v6_body(a)[:-1] + ', "x": -Infinity}'), BODY),
    c("v6 nesting 40", lambda a: raw_v6(a, v6_body(a)[:-1] + ', "x": ' + deep(40) + "}"), BODY),
    c("v6 body with BOM", lambda a: raw_v6(a, "\ufeff" + v6_body(a)), BODY),
    c(
        "v6 mistyped beats bad credentials",
        lambda a: raw_v6(a, v6_body(a, client_secret="wrong", storeId=1)),
        BODY,
    ),
    c(
        "v6 client_id of b",
        lambda a: raw_v6(a, v6_body(a, client_id=a.clients["b"].client_id)),
        AUTH,
        "a",
    ),
    c(
        "v6 client_secret of b",
        lambda a: raw_v6(a, v6_body(a, client_secret=a.clients["b"].secret)),
        AUTH,
        "a",
    ),
    c(
        "v6 client_id with trailing space",
        lambda a: raw_v6(a, v6_body(a, client_id=a.clients["a"].client_id + " ")),
        AUTH,
        "a",
    ),
    c(
        "v6 credentials beat grant type",
        lambda a: raw_v6(a, v6_body(a, client_secret="x", grant__type="password")),
        AUTH,
        "a",
    ),
    c(
        "v6 grant-type password",
        lambda a: raw_v6(a, v6_body(a, grant__type="password")),
        (400, "unsupported_grant_type", "grant_type_unsupported"),
    ),
    c(
        "v6 grant_type alias authorization_code",
        lambda a: raw_v6(a, v6_body(a, grant__type=..., grant_type="authorization_code")),
        (400, "unsupported_grant_type", "grant_type_unsupported"),
    ),
    c(
        "v6 grant-type case",
        lambda a: raw_v6(a, v6_body(a, grant__type="Client_Credentials")),
        (400, "unsupported_grant_type", "grant_type_unsupported"),
    ),
    c(
        "v6 grant type beats scope",
        lambda a: raw_v6(a, v6_body(a, grant__type="password", scope="openid")),
        (400, "unsupported_grant_type", "grant_type_unsupported"),
    ),
    c(
        "v6 scope openid",
        lambda a: raw_v6(a, v6_body(a, scope="openid")),
        (400, "invalid_scope", "scope_invalid"),
    ),
    c(
        "v6 scope with space",
        lambda a: raw_v6(a, v6_body(a, scope="response_mode openid")),
        (400, "invalid_scope", "scope_invalid"),
    ),
    c("v6 body beats missing PoP", lambda a: raw_v6(a, "[]", no_pop=True), BODY),
    # --- PoP present, JOSE structure and algorithms (A3 step 1) -----------------------------
    c(
        "no X-Authorization",
        lambda a: token_request(a, no_pop=True),
        (401, "invalid_request", "pop_missing"),
    ),
    c(
        "blank X-Authorization",
        lambda a: token_request(a, pop="   "),
        (401, "invalid_request", "pop_missing"),
    ),
    c(
        "alg none",
        with_pop(lambda a: forged(a, header={"alg": "none", "typ": "JWT"}, signature="")),
        MALFORMED,
    ),
    c(
        "alg nOnE with a signature",
        with_pop(lambda a: forged(a, header={"alg": "nOnE", "typ": "JWT"})),
        MALFORMED,
    ),
    c("alg HS256 keyed with the public key", with_pop(_hs256_pop), MALFORMED),
    c("alg RS512", with_pop(lambda a: forged(a, header={"alg": "RS512", "typ": "JWT"})), MALFORMED),
    c("alg missing", with_pop(lambda a: forged(a, header={"typ": "JWT"})), MALFORMED),
    c(
        "crit header",
        with_pop(lambda a: forged(a, header={**POP_HEADER, "crit": ["exp"]})),
        MALFORMED,
    ),
    c(
        "jku header",
        with_pop(
            lambda a: forged(
                a, header={**POP_HEADER, "jku": "http://127.0.0.1:1/jwks"}, key=ATTACKER
            )
        ),
        MALFORMED,
    ),
    c(
        "jwk header with the attacker's key",
        with_pop(
            lambda a: forged(
                a, header={**POP_HEADER, "jwk": dict(ATTACKER.public.jwk)}, key=ATTACKER
            )
        ),
        MALFORMED,
    ),
    c(
        "x5u header",
        with_pop(lambda a: forged(a, header={**POP_HEADER, "x5u": "http://127.0.0.1:1/c.pem"})),
        MALFORMED,
    ),
    c(
        "x5c header",
        with_pop(lambda a: forged(a, header={**POP_HEADER, "x5c": ["MIIB"]})),
        MALFORMED,
    ),
    c(
        "typ at+jwt",
        with_pop(lambda a: forged(a, header={"alg": "RS256", "typ": "at+jwt"})),
        MALFORMED,
    ),
    c("header is an array", with_pop(lambda a: forged(a, header=b'["RS256"]')), MALFORMED),
    c(
        "header duplicate alg",
        with_pop(lambda a: forged(a, header=b'{"alg":"none","alg":"RS256","typ":"JWT"}')),
        MALFORMED,
    ),
    c(
        "header over 1 KiB",
        with_pop(lambda a: forged(a, header={**POP_HEADER, "pad": "x" * 1100})),
        MALFORMED,
    ),
    c("two segments", with_pop(lambda a: forged(a).rpartition(".")[0]), MALFORMED),
    c("four segments", with_pop(lambda a: forged(a) + ".AAAA"), MALFORMED),
    c(
        "five segments (JWE shape)",
        with_pop(lambda a: "eyJhbGciOiJSU0EtT0FFUCJ9.AAAA.AAAA.AAAA.AAAA"),
        MALFORMED,
    ),
    c("empty signature", with_pop(lambda a: forged(a).rpartition(".")[0] + "."), MALFORMED),
    c("padded signature", with_pop(lambda a: forged(a) + "=="), MALFORMED),
    c(
        "standard alphabet",
        with_pop(
            lambda a: (
                forged(a).replace("-", "+").replace("_", "/")
                if ("-" in forged(a) or "_" in forged(a))
                else forged(a) + "+"
            )
        ),
        MALFORMED,
    ),
    c("non-canonical signature bits", with_pop(_noncanonical_sig), MALFORMED),
    c("whitespace inside", with_pop(lambda a: forged(a).replace(".", ". ", 1)), MALFORMED),
    c(
        "JSON serialization",
        with_pop(lambda a: json.dumps({"payload": "e30", "signatures": []})),
        MALFORMED,
    ),
    c("payload not JSON", with_pop(lambda a: forged(a, payload=b"not json")), MALFORMED),
    c("payload invalid UTF-8", with_pop(lambda a: forged(a, payload=b'{"jti":"\xff"}')), MALFORMED),
    c(
        "payload UTF-16",
        with_pop(lambda a: forged(a, payload='{"a":1}'.encode("utf-16"))),
        MALFORMED,
    ),
    c(
        "payload duplicate jti",
        with_pop(
            lambda a: _claims_bytes(
                a,
                '{{"edts":{edts},"v":"1","exp":{exp},"ehts":{ehts},"iat":{iat},"jti":{jti},"jti":"other"}}',
            )
        ),
        MALFORMED,
    ),
    c(
        "payload NaN iat",
        with_pop(
            lambda a: _claims_bytes(
                a, '{{"edts":{edts},"v":"1","exp":{exp},"ehts":{ehts},"iat":NaN,"jti":{jti}}}'
            )
        ),
        MALFORMED,
    ),
    c(
        "payload deep nesting",
        with_pop(lambda a: forged(a, extra=json.loads(deep(200)))),
        MALFORMED,
    ),
    c("PoP over 8 KiB", with_pop(lambda a: forged(a, pad="x" * 9000)), MALFORMED),
    c("access token as PoP", with_pop(lambda a: a.tokens["a"]["access_token"]), MALFORMED),
    c("ID token as PoP", with_pop(lambda a: a.tokens["a"]["id_token"]), MALFORMED),
    c("malformed beats wrong key", with_pop(lambda a: forged(a, key=ATTACKER, iat="1")), MALFORMED),
    # --- claims syntax (A3 step 2) ----------------------------------------------------------
    c("iat string", with_pop(lambda a: forged(a, iat=str(int(time.time())))), MALFORMED),
    c("iat true", with_pop(lambda a: forged(a, iat=True)), MALFORMED),
    c("iat float", with_pop(lambda a: forged(a, iat=time.time())), MALFORMED),
    c("exp float", with_pop(lambda a: forged(a, exp=time.time() + 30.5)), MALFORMED),
    c("exp bool", with_pop(lambda a: forged(a, exp=False)), MALFORMED),
    c("exp huge", with_pop(lambda a: forged(a, exp=10**400)), MALFORMED),
    c("exp missing", with_pop(lambda a: forged(a, exp=...)), MALFORMED),
    c("iat missing", with_pop(lambda a: forged(a, iat=...)), MALFORMED),
    c("exp equals iat", with_pop(lambda a: forged(a, exp=int(time.time()))), MALFORMED),
    c("exp before iat", with_pop(lambda a: forged(a, exp=int(time.time()) - 5)), MALFORMED),
    c("jti missing", with_pop(lambda a: forged(a, jti=...)), MALFORMED),
    c("jti empty", with_pop(lambda a: forged(a, jti="")), MALFORMED),
    c("jti number", with_pop(lambda a: forged(a, jti=7)), MALFORMED),
    c("jti 129 chars", with_pop(lambda a: forged(a, jti="j" * 129)), MALFORMED),
    c("v 2", with_pop(lambda a: forged(a, v="2")), MALFORMED),
    c("v true", with_pop(lambda a: forged(a, v=True)), MALFORMED),
    c("v missing", with_pop(lambda a: forged(a, v=...)), MALFORMED),
    c("ehts empty", with_pop(lambda a: forged(a, ehts="")), MALFORMED),
    c("ehts list", with_pop(lambda a: forged(a, ehts=["uri"])), MALFORMED),
    c(
        "ehts duplicate names",
        with_pop(lambda a: forged(a, ehts="Content-Type;Authorization;uri;uri;http-method")),
        MALFORMED,
    ),
    c(
        "ehts empty name",
        with_pop(lambda a: forged(a, ehts="Content-Type;Authorization;;uri;http-method")),
        MALFORMED,
    ),
    c(
        "ehts trailing separator",
        with_pop(lambda a: forged(a, ehts="Content-Type;Authorization;uri;http-method;")),
        MALFORMED,
    ),
    c(
        "ehts padded name",
        with_pop(lambda a: forged(a, ehts="Content-Type; Authorization;uri;http-method")),
        MALFORMED,
    ),
    c(
        "ehts 101 names",
        with_pop(
            lambda a: forged(
                a,
                ehts=";".join(
                    ["Authorization", "uri", "http-method"] + [f"X-{i}" for i in range(98)]
                ),
            )
        ),
        MALFORMED,
    ),
    c("edts missing", with_pop(lambda a: forged(a, edts=...)), MALFORMED),
    c("edts number", with_pop(lambda a: forged(a, edts=1)), MALFORMED),
    # --- signature (A3 step 3; counted) -----------------------------------------------------
    c("signed by an unregistered key", with_pop(lambda a: forged(a, key=ATTACKER)), BAD_SIG, "a"),
    c(
        "signed by client b's key",
        with_pop(lambda a: forged(a, key=a.clients["b"].key)),
        BAD_SIG,
        "a",
    ),
    c(
        "kid naming the real key, attacker's signature",
        with_pop(
            lambda a: forged(
                a, header={**POP_HEADER, "kid": a.clients["a"].key.thumbprint}, key=ATTACKER
            )
        ),
        BAD_SIG,
        "a",
    ),
    c(
        "signature bit flipped",
        with_pop(lambda a: (lambda t: t[:-6] + ("A" if t[-6] != "A" else "B") + t[-5:])(forged(a))),
        BAD_SIG,
        "a",
    ),
    c(
        "claims changed after signing",
        with_pop(
            lambda a: (lambda t, u: f"{u.split('.')[0]}.{u.split('.')[1]}.{t.split('.')[2]}")(
                forged(a), forged(a, jti="changed")
            )
        ),
        BAD_SIG,
        "a",
    ),
    c(
        "header changed after signing",
        with_pop(_header_swapped),
        BAD_SIG,
        "a",
    ),
    c(
        "wrong key beats expiry",
        with_pop(lambda a: forged(a, key=ATTACKER, now=time.time() - 3600)),
        BAD_SIG,
        "a",
    ),
    # --- time (A3 step 4) -------------------------------------------------------------------
    c("lifetime 121", with_pop(lambda a: forged(a, exp=int(time.time()) + 121)), EXPIRED),
    c(
        "age 71",
        with_pop(lambda a: forged(a, now=time.time() - 71, exp=int(time.time()) + 30)),
        EXPIRED,
    ),
    c("iat 30 s in the future", with_pop(lambda a: forged(a, now=time.time() + 30)), EXPIRED),
    c(
        "expired 11 s ago",
        with_pop(lambda a: forged(a, now=time.time() - 40, exp=int(time.time()) - 11)),
        EXPIRED,
    ),
    c("iat year 1970", with_pop(lambda a: forged(a, iat=1, exp=61)), EXPIRED),
    c(
        "expiry beats coverage",
        with_pop(lambda a: forged(a, now=time.time() - 200, pairs=[("uri", "/oauth2/v2/tokens")])),
        EXPIRED,
    ),
    # --- coverage (A3 step 5) ---------------------------------------------------------------
    c(
        "header named URI stands in for uri",
        lambda a: token_request(
            a,
            pop=forged(
                a, pairs=[*_ct_auth(a), ("URI", "/oauth2/v2/tokens"), ("http-method", "POST")]
            ),
            extra=[("URI", "/oauth2/v2/tokens")],
        ),
        INSUFFICIENT,
    ),
    c(
        "header named Body stands in for body",
        lambda a: token_request(
            a,
            "a",
            "v6",
            pop=forged(a, pairs=[*default_pairs(a, version="v6"), ("Body", "{}")]),
            extra=[("Body", "{}")],
        ),
        INSUFFICIENT,
    ),
    c(
        "Authorization not covered",
        lambda a: _signed_with(
            a,
            [
                ("Content-Type", "application/json"),
                ("uri", "/oauth2/v2/tokens"),
                ("http-method", "POST"),
            ],
        ),
        INSUFFICIENT,
    ),
    c(
        "uri not covered",
        lambda a: _signed_with(a, [*_ct_auth(a), ("http-method", "POST")]),
        INSUFFICIENT,
    ),
    c(
        "http-method not covered",
        lambda a: _signed_with(a, [*_ct_auth(a), ("uri", "/oauth2/v2/tokens")]),
        INSUFFICIENT,
    ),
    c(
        "v6 body not covered",
        lambda a: token_request(
            a,
            "a",
            "v6",
            signed=[*_ct_auth(a), ("uri", "/oauth2/v6/tokens"), ("http-method", "POST")],
        ),
        INSUFFICIENT,
    ),
    c(
        "signed header absent",
        lambda a: _signed_with(a, [*default_pairs(a), ("X-Custom", "1")]),
        INSUFFICIENT,
    ),
    c(
        "signed header blank",
        lambda a: token_request(
            a,
            pop=forged(a, pairs=[*default_pairs(a), ("X-Custom", " ")]),
            extra=[("X-Custom", " ")],
        ),
        INSUFFICIENT,
    ),
    c(
        "body signed as empty on v6",
        lambda a: token_request(
            a,
            "a",
            "v6",
            pop=forged(
                a,
                pairs=[
                    *_ct_auth(a),
                    ("uri", "/oauth2/v6/tokens"),
                    ("http-method", "POST"),
                    ("body", ""),
                ],
            ),
        ),
        MISMATCH,
    ),
    # --- digest (A3 step 6) -----------------------------------------------------------------
    c("edts case flipped", with_pop(lambda a: forged(a, edts=flip_case(forged_edts(a)))), MISMATCH),
    c("edts padded", with_pop(lambda a: forged(a, edts=forged_edts(a) + "=")), MISMATCH),
    c(
        "edts standard alphabet",
        with_pop(
            lambda a: forged(
                a, edts=base64.b64encode(base64.urlsafe_b64decode(forged_edts(a) + "=")).decode()
            )
        ),
        MISMATCH,
    ),
    c(
        "uri of the other endpoint",
        lambda a: _signed_with(a, request_pairs("POST", "/oauth2/v6/tokens", _ct_auth(a))),
        MISMATCH,
    ),
    c(
        "http-method lower case",
        lambda a: _signed_with(a, request_pairs("post", "/oauth2/v2/tokens", _ct_auth(a))),
        MISMATCH,
    ),
    c(
        "Content-Type value changed",
        lambda a: token_request(
            a, ctype="application/json; charset=utf-8", signed=default_pairs(a)
        ),
        MISMATCH,
    ),
    c(
        "signed value with trailing spaces",
        lambda a: _signed_with(
            a,
            request_pairs(
                "POST",
                "/oauth2/v2/tokens",
                [("Content-Type", "application/json  "), ("Authorization", _auth(a))],
            ),
        ),
        MISMATCH,
    ),
    c(
        "repeated header joined",
        lambda a: token_request(
            a,
            signed=[*default_pairs(a), ("X-Trace", "1")],
            extra=[("X-Trace", "1"), ("X-Trace", "2")],
        ),
        MISMATCH,
    ),
    c(
        "v2 body signed differently",
        lambda a: token_request(
            a, body="{}", signed=request_pairs("POST", "/oauth2/v2/tokens", _ct_auth(a), "{ }")
        ),
        MISMATCH,
    ),
    c(
        "v6 body changed after signing",
        lambda a: token_request(
            a,
            "a",
            "v6",
            body=v6_body(a, storeId="2"),
            signed=request_pairs("POST", "/oauth2/v6/tokens", _ct_auth(a), v6_body(a, storeId="1")),
        ),
        MISMATCH,
    ),
    c(
        "uri signed with a query",
        lambda a: _signed_with(a, request_pairs("POST", "/oauth2/v2/tokens?x=1", _ct_auth(a))),
        MISMATCH,
    ),
    c(
        "Authorization signed for client b",
        lambda a: _signed_with(
            a,
            request_pairs(
                "POST",
                "/oauth2/v2/tokens",
                [("Content-Type", "application/json"), ("Authorization", a.clients["b"].basic)],
            ),
        ),
        MISMATCH,
    ),
    # --- subscription (403) -----------------------------------------------------------------
    c(
        "v6-only client at v2",
        lambda a: token_request(a, "v6only"),
        (403, "access_denied", "not_subscribed"),
    ),
    c(
        "v2-only client at v6",
        lambda a: token_request(a, "b", "v6"),
        (403, "access_denied", "not_subscribed"),
    ),
]


def forged_edts(a: Arena) -> str:
    from taap.core import compute_edts

    return compute_edts(v for _, v in default_pairs(a))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_token_request(arena: Arena, case: Case) -> None:
    expect_refused(
        arena,
        case.build(arena),
        case.status,
        case.error,
        case.code,
        counted=case.counted_id(arena),
        audited=case.audited,
        surface=case.surface,
    )


def test_case_count() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 100


def test_replayed_pop_is_refused_without_side_effects(arena: Arena) -> None:
    request = token_request(arena)
    first = arena.send(request)
    assert first.status == 200, first.body
    expect_refused(arena, request, 401, "invalid_request", "pop_replayed")


def test_replay_of_a_v6_pop(arena: Arena) -> None:
    request = token_request(arena, "a", "v6")
    assert arena.send(request).status == 200
    expect_refused(arena, request, 401, "invalid_request", "pop_replayed")


def test_failed_request_leaves_its_jti_usable(arena: Arena) -> None:
    """R3: a refused request (here: coverage) must not burn the jti of the client's PoP."""
    pop = build_pop_token(default_pairs(arena), arena.clients["a"].key)
    # The PoP sent with a body it did not sign: refused at coverage, nothing recorded ...
    expect_refused(arena, token_request(arena, body="{}", pop=pop), *INSUFFICIENT)
    # ... and with a header value it did not sign: refused at the digest ...
    expect_refused(arena, token_request(arena, pop=pop, ctype="application/json;x=1"), *MISMATCH)
    # ... then as intended: accepted once.
    assert arena.send(token_request(arena, pop=pop)).status == 200


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_basic_scheme_is_case_insensitive(arena: Arena, scheme: str) -> None:
    cl = arena.clients["a"]
    auth = f"{scheme} " + base64.b64encode(f"{cl.client_id}:{cl.secret}".encode()).decode()
    reply = arena.send(token_request(arena, auth=auth))
    assert reply.status == 200, reply.body
    assert set(reply.json()) == {"id_token", "access_token", "expires_in", "scope", "status"}


def test_default_rate_limit(arena: Arena) -> None:
    """Default limits (client burst 10): failures A8 does not name never lead to 429; the 11th
    wrong secret does, and then even the right secret gets 429 (no oracle)."""
    arena.reset_buckets()
    cl = arena.clients["a"]
    try:
        for _ in range(12):
            reply = arena.send(token_request(arena, pop=forged(arena, iat="x")))
            assert reply.json()["error_code"] == "pop_malformed"
        # The bucket refills one token per 6 s, so on a slow machine a few more may pass.
        start = time.monotonic()
        failures = 0
        while True:
            limited = arena.send(token_request(arena, auth=basic(cl.client_id, "wrong")))
            if limited.status == 429:
                break
            assert limited.json()["error_code"] == "client_auth_failed"
            failures += 1
            assert failures <= 10 + (time.monotonic() - start) / 6 + 1
        assert failures >= 10  # the burst is honoured
        assert limited.json()["error_code"] == "rate_limited"
        assert int(limited.header("retry-after") or "0") >= 1
        right = arena.send(token_request(arena))
        assert right.status == 429
        assert right.json()["error"] == "slow_down"
    finally:
        arena.reset_buckets()


def test_no_secret_or_trace_in_the_log(arena: Arena) -> None:
    """Runs after the cases above: attempted secrets, Basic values and PoPs never logged."""
    text = arena.log.read_text(errors="replace")
    assert "Traceback" not in text
    assert CANARY_SECRET not in text
    assert basic("x", CANARY_SECRET).split()[1] not in text
    for client in arena.clients.values():
        assert client.secret not in text
        assert client.basic.split()[1] not in text
    for tokens in arena.tokens.values():
        assert tokens["access_token"].split(".")[2] not in text
        assert tokens["id_token"].split(".")[2] not in text
    issued = [line for line in arena.audit_lines() if line["event"] == "token_issued"]
    assert all(line["client_id"] != INJECTED_ID[:200] for line in issued)


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/oauth2/v1/jwks", "/openapi.json"]
)
def test_host_header_never_reaches_published_urls(arena: Arena, path: str) -> None:
    """Host-header injection: metadata URLs come from the public-URL setting only."""
    reply = arena.send(
        http_request("GET", path, [("X-Forwarded-Host", "evil.example")], host="evil.example")
    )
    assert reply.status == 200
    assert b"evil.example" not in reply.body
