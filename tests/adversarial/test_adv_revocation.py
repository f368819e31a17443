"""Hostile requests to the revocation (RFC 7009) and introspection (RFC 7662) endpoints of a real
``taap serve`` process (docs/server.md, "Revocation and introspection").

Each refused case asserts what every case of this suite asserts (``expect_refused``): the exact
status, ``error`` and ``error_code``, the ``revocation_rejected`` / ``introspection_rejected``
audit line, no ``token_revoked`` line, no replay key spent, the failed-auth buckets moved only
for ``client_auth_failed`` / ``pop_signature_invalid`` (the caller's own: ``client:<id>`` at
revocation, ``rs:<id>`` at introspection), and every registry table unchanged, so nothing was
revoked. The requests that are answered 200 on purpose (another client's token, RFC 7009 §2.2)
have tests of their own below.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from adversarial_kit import Arena, cli, expect_refused, http_request
from token_cases import Case, token_request

from kit.wire import basic
from taap.core import PrivateKey, build_pop_token, generate_private_key, request_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

REVOKE = "/oauth2/v1/revoke"
INTROSPECT = "/oauth2/v1/introspect"
FORM = "application/x-www-form-urlencoded"
AUTH = (401, "invalid_client", "client_auth_failed")
BAD_SIG = (401, "invalid_client", "pop_signature_invalid")
BODY = (400, "invalid_request", "body_invalid")
REQ = (400, "invalid_request", "request_malformed")
TYPE = (415, "invalid_request", "content_type_unsupported")
TOO_LARGE = (413, "invalid_request", "body_too_large")
NOT_POST = (405, "invalid_request", "method_not_allowed")
MIB = 1024 * 1024
ATTACKER = generate_private_key()
#: the resource server of each arena (by port), registered with the CLI on first use
_RS: dict[int, tuple[str, str]] = {}


def rs(a: Arena) -> tuple[str, str]:
    if a.port not in _RS:
        out = cli(a, "resource-servers", "create", "--name", "adv-rs", "--json")
        created: dict[str, Any] = json.loads(out)
        _RS[a.port] = (created["id"], created["secret"])
    return _RS[a.port]


def form(token: str) -> bytes:
    return urlencode({"token": token, "token_type_hint": "access_token"}).encode()


def revoke(
    a: Arena,
    client: str = "a",
    *,
    body: bytes | None = None,
    ctype: str = FORM,
    auth: str | None = None,
    no_pop: bool = False,
    key: PrivateKey | None = None,
    signed_body: bytes | None = None,
    signed_uri: str = REVOKE,
    now: float | None = None,
    method: str = "POST",
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """A revocation by ``client`` of client a's own live token, complete and valid unless
    told otherwise (Basic and a PoP over ``Content-Type``, ``Authorization``, uri, method and
    the body: A2's default coverage)."""
    c = a.clients[client]
    raw = form(a.tokens["a"]["access_token"]) if body is None else body
    authorization = c.basic if auth is None else auth
    headers = [("Content-Type", ctype), ("Authorization", authorization)]
    if not authorization:  # no credentials at all: no header to sign either
        headers = headers[:1]
    if not no_pop:
        signed = raw if signed_body is None else signed_body
        pairs = request_pairs("POST", signed_uri, headers, signed)
        headers.append(("X-Authorization", build_pop_token(pairs, key or c.key, now=now)))
    return http_request(method, REVOKE, [*headers, *(extra or [])], raw)


def introspect(
    a: Arena,
    *,
    body: bytes | None = None,
    ctype: str | None = FORM,
    auth: str | None = None,
    method: str = "POST",
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """An introspection of client a's token with the resource server's credentials."""
    raw = form(a.tokens["a"]["access_token"]) if body is None else body
    authorization = basic(*rs(a)) if auth is None else auth
    headers = [("Authorization", authorization)] if authorization else []
    if ctype is not None:
        headers.insert(0, ("Content-Type", ctype))
    return http_request(method, INTROSPECT, [*headers, *(extra or [])], raw)


def declared(a: Arena, path: str, auth: str, size: int) -> bytes:
    """A request declaring a body of ``size`` bytes, of which only the start is sent."""
    head = http_request(
        "POST", path, [("Content-Type", FORM), ("Authorization", auth)], content_length=False
    )
    head = head.replace(b"\r\n\r\n", f"\r\nContent-Length: {size}\r\n\r\n".encode(), 1)
    return head + b"token=" + b"x" * 1000


def c(name: str, build: Any, expected: tuple[int, str, str], counted: str | None = None) -> Case:
    status, error, code = expected
    return Case(name, build, status, error, code, counted, surface="revoke")


def i(name: str, build: Any, expected: tuple[int, str, str], counted: str | None = None) -> Case:
    status, error, code = expected
    return Case(name, build, status, error, code, counted, surface="introspect")


CASES: list[Case] = [
    # --- revocation: who asks -----------------------------------------------------------------
    c(
        "revoke without a PoP",
        lambda a: revoke(a, no_pop=True),
        (401, "invalid_request", "pop_missing"),
    ),
    c(
        "revoke with a wrong secret",
        lambda a: revoke(a, auth=basic(a.clients["a"].client_id, "wrong")),
        AUTH,
        "a",
    ),
    c(
        "revoke by an unknown client",
        lambda a: revoke(a, auth=basic("taap-nobody", "x")),
        AUTH,
        "=taap-nobody",
    ),
    c("revoke without Basic", lambda a: revoke(a, auth=""), AUTH, ""),
    c(
        "revoke with the token as Bearer credentials",
        lambda a: revoke(a, auth="Bearer " + a.tokens["a"]["access_token"]),
        AUTH,
        "",
    ),
    c(
        "revoke with b's secret under a's id",
        lambda a: revoke(a, auth=basic(a.clients["a"].client_id, a.clients["b"].secret)),
        AUTH,
        "a",
    ),
    c(
        "revoke with b's Basic and a's PoP key",
        lambda a: revoke(a, "b", key=a.clients["a"].key),
        BAD_SIG,
        "b",
    ),
    c("revoke with an attacker's PoP key", lambda a: revoke(a, key=ATTACKER), BAD_SIG, "a"),
    # --- revocation: the PoP ---------------------------------------------------------------------
    c(
        "revoke PoP over another token",
        lambda a: revoke(a, signed_body=form(a.tokens["b"]["access_token"])),
        (401, "invalid_request", "pop_edts_mismatch"),
    ),
    c(
        "revoke PoP for the token endpoint",
        lambda a: revoke(a, signed_uri="/oauth2/v2/tokens"),
        (401, "invalid_request", "pop_edts_mismatch"),
    ),
    c(
        "revoke PoP expired",
        lambda a: revoke(a, now=time.time() - 200),
        (401, "invalid_request", "pop_expired"),
    ),
    c(
        "revoke PoP without the body",
        lambda a: revoke(a, signed_body=b""),
        (401, "invalid_request", "pop_ehts_insufficient"),
    ),
    # --- revocation: the body ----------------------------------------------------------------
    c("revoke a token of 1 MiB", lambda a: revoke(a, body=form("x" * MIB)), TOO_LARGE),
    c(
        "revoke declaring 1 MiB",
        lambda a: declared(a, REVOKE, a.clients["a"].basic, MIB + 1),
        TOO_LARGE,
    ),
    c("revoke a token over 8192 characters", lambda a: revoke(a, body=form("e" * 8193)), BODY),
    c("revoke text/plain", lambda a: revoke(a, ctype="text/plain"), TYPE),
    c(
        "revoke multipart",
        lambda a: revoke(
            a,
            ctype="multipart/form-data; boundary=b",
            body=b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n--b--\r\n',
        ),
        TYPE,
    ),
    c("revoke XML", lambda a: revoke(a, ctype="application/xml", body=b"<token>abc</token>"), TYPE),
    c("revoke JSON array", lambda a: revoke(a, ctype="application/json", body=b'["token"]'), BODY),
    c(
        "revoke JSON token a number",
        lambda a: revoke(a, ctype="application/json", body=b'{"token": 7}'),
        BODY,
    ),
    c(
        "revoke JSON token twice",
        lambda a: revoke(a, ctype="application/json", body=b'{"token": "a", "token": "b"}'),
        BODY,
    ),
    c("revoke form token twice", lambda a: revoke(a, body=b"token=a&token=b"), BODY),
    c(
        "revoke form without a token",
        lambda a: revoke(a, body=b"token_type_hint=access_token"),
        BODY,
    ),
    c("revoke form that does not parse", lambda a: revoke(a, body=b"a=b=c&&"), BODY),
    c("revoke form with invalid UTF-8", lambda a: revoke(a, body=b"token=%FF"), BODY),
    c("revoke empty body", lambda a: revoke(a, body=b""), BODY),
    # --- revocation: HTTP shape ----------------------------------------------------------------
    c("revoke by GET", lambda a: revoke(a, method="GET"), NOT_POST),
    c(
        "revoke with Authorization twice",
        lambda a: revoke(a, extra=[("Authorization", basic("x", "y"))]),
        REQ,
    ),
    c(
        "revoke with X-Authorization twice",
        lambda a: revoke(a, extra=[("X-Authorization", "a.b.c")]),
        REQ,
    ),
    c(
        "revoke with headers over 16 KiB",
        lambda a: revoke(a, extra=[("X-Pad", "p" * 17_000)]),
        (431, "invalid_request", "headers_too_large"),
    ),
    # --- introspection: who asks ---------------------------------------------------------------
    i(
        "introspect with a's client credentials",
        lambda a: introspect(a, auth=a.clients["a"].basic),
        AUTH,
        "a",
    ),
    i(
        "introspect with b's client credentials",
        lambda a: introspect(a, auth=a.clients["b"].basic),
        AUTH,
        "b",
    ),
    i(
        "introspect with a wrong secret",
        lambda a: introspect(a, auth=basic(rs(a)[0], "wrong")),
        AUTH,
        "rs",
    ),
    i(
        "introspect with a client secret under the rs id",
        lambda a: introspect(a, auth=basic(rs(a)[0], a.clients["a"].secret)),
        AUTH,
        "rs",
    ),
    i(
        "introspect by an unknown resource server",
        lambda a: introspect(a, auth=basic("rs_" + "A" * 32, "x")),
        AUTH,
        "=rs_" + "A" * 32,
    ),
    i("introspect without Basic", lambda a: introspect(a, auth=""), AUTH, ""),
    i(
        "introspect with the token as Bearer credentials",
        lambda a: introspect(a, auth="Bearer " + a.tokens["a"]["access_token"]),
        AUTH,
        "",
    ),
    # --- introspection: the body and HTTP shape ---------------------------------------------------
    i("introspect a token of 1 MiB", lambda a: introspect(a, body=form("x" * MIB)), TOO_LARGE),
    i(
        "introspect declaring 1 MiB",
        lambda a: declared(a, INTROSPECT, basic(*rs(a)), MIB + 1),
        TOO_LARGE,
    ),
    i("introspect text/plain", lambda a: introspect(a, ctype="text/plain"), TYPE),
    i("introspect without a content type", lambda a: introspect(a, ctype=None), TYPE),
    i("introspect JSON array", lambda a: introspect(a, ctype="application/json", body=b"[]"), BODY),
    i(
        "introspect form without a token",
        lambda a: introspect(a, body=b"token_type_hint=access_token"),
        BODY,
    ),
    i("introspect by GET", lambda a: introspect(a, method="GET"), NOT_POST),
    i(
        "introspect with Authorization twice",
        lambda a: introspect(a, extra=[("Authorization", basic("x", "y"))]),
        REQ,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_revocation_request(arena: Arena, case: Case) -> None:
    counted = rs(arena)[0] if case.counted == "rs" else case.counted_id(arena)
    data = case.build(arena)
    expect_refused(
        arena, data, case.status, case.error, case.code, counted=counted, surface=case.surface
    )


def test_case_count() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 40


# --- answered 200 on purpose, replays, and the timing of introspection -------------------------
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def _fresh_token(arena: Arena, client: str) -> str:
    issued = arena.send(token_request(arena, client))
    assert issued.status == 200, issued.body
    return str(issued.json()["access_token"])


def _guarded_call(arena: Arena, client: str, access: str) -> int:
    base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {access}")]
    pop = build_pop_token(request_pairs("GET", DEVICE, base), arena.clients[client].key)
    return arena.send(http_request("GET", DEVICE, [*base, ("X-Authorization", pop)])).status


def _active(arena: Arena, access: str) -> bool:
    reply = arena.send(introspect(arena, body=form(access)))
    assert reply.status == 200, reply.body
    return bool(reply.json()["active"])


def test_another_clients_token_is_answered_200_and_left_alone(arena: Arena) -> None:
    """RFC 7009 §2.2: no oracle. Client b, with valid credentials and PoP, asks to revoke a's
    token: 200 ``{}`` as for its own, and nothing is revoked."""
    victim = arena.tokens["a"]["access_token"]
    before = arena.snapshot()
    reply = arena.send(revoke(arena, "b", body=form(victim)))
    after = arena.snapshot()
    assert (reply.status, reply.json()) == (200, {})
    assert reply.header("cache-control") == "no-store"
    assert after.tables == before.tables  # no revocation row
    assert len(after.jti_keys - before.jti_keys) == 1  # b's PoP is spent, as any valid one
    assert after.last is not None
    assert (after.last["event"], after.last["client_id"]) == (
        "revocation_ignored",
        arena.clients["b"].client_id,
    )
    assert after.last["token_jti"] is None
    assert _active(arena, victim)
    assert _guarded_call(arena, "a", victim) == 200


def test_replayed_revocation_pop_revokes_nothing_more(arena: Arena) -> None:
    access = _fresh_token(arena, "a")
    request = revoke(arena, body=form(access))  # the control: the builder's request is valid
    first = arena.send(request)
    assert (first.status, first.json()) == (200, {})
    assert not _active(arena, access)
    expect_refused(arena, request, 401, "invalid_request", "pop_replayed", surface="revoke")


def test_a_disabled_client_cannot_revoke(arena: Arena) -> None:
    client = arena.clients["disabled"]
    access = _fresh_token(arena, "disabled")
    cli(arena, "clients", "disable", client.client_id)
    try:
        request = revoke(arena, "disabled", body=form(access))
        expect_refused(arena, request, *AUTH, counted=client.client_id, surface="revoke")
    finally:
        cli(arena, "clients", "enable", client.client_id)


def test_introspection_timing_does_not_tell_live_from_revoked(arena: Arena) -> None:
    """Every token takes the same steps (docs/server.md; counted step by step in
    tests/server/test_revocation_feed.py). Over HTTP, 200 rounds of a live, a revoked and a
    garbage token, in rotating order: the medians stay within a factor of 3 of each other, a
    bound no extra database read or RSA verification could hide in, yet wide enough for a
    machine shared with other work."""
    live = _fresh_token(arena, "b")
    revoked = _fresh_token(arena, "b")
    assert arena.send(revoke(arena, "b", body=form(revoked))).status == 200
    kinds = {"live": live, "revoked": revoked, "garbage": "x" * len(live)}
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    with httpx.Client(base_url=arena.base, timeout=10.0) as http:
        headers = {"Content-Type": FORM, "Authorization": basic(*rs(arena))}
        order = list(kinds)
        for round_ in range(200):
            for kind in order[round_ % 3 :] + order[: round_ % 3]:
                started = time.perf_counter()
                reply = http.post(INTROSPECT, headers=headers, content=form(kinds[kind]))
                samples[kind].append(time.perf_counter() - started)
                assert reply.json()["active"] is (kind == "live")
    medians = {kind: statistics.median(times) for kind, times in samples.items()}
    print("\nintrospection medians (ms):", {k: round(v * 1000, 3) for k, v in medians.items()})
    assert max(medians.values()) < 3 * min(medians.values()), medians
