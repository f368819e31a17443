"""The opt-in PoP policies on a real server (TAAP.md A3; SECURITY.md §3): what ``java-compat``
still refuses at the token server, and the weaknesses it accepts, pinned so that a change is
noticed. Its own server: ``TAAP_POP_POLICY=java-compat``."""

from __future__ import annotations

import time

import pytest
from adversarial_kit import Arena, expect_refused
from token_cases import default_pairs, forged, token_request

from taap.core import compute_edts, generate_private_key

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SERVER_ENV = {"TAAP_POP_POLICY": "java-compat"}
MALFORMED = (401, "invalid_request", "pop_malformed")
ATTACKER = generate_private_key()


def edts(arena: Arena) -> str:
    return compute_edts(v for _, v in default_pairs(arena))


def test_a_pop_without_jti_is_refused(arena: Arena) -> None:
    """One hop needs a jti: the token server refuses a PoP without one under every policy."""
    expect_refused(arena, token_request(arena, pop=forged(arena, jti=...)), *MALFORMED)


def test_alg_none_is_still_refused(arena: Arena) -> None:
    pop = forged(arena, header={"alg": "none", "typ": "JWT"}, signature="")
    expect_refused(arena, token_request(arena, pop=pop), *MALFORMED)


def test_foreign_key_is_still_refused(arena: Arena) -> None:
    expect_refused(
        arena,
        token_request(arena, pop=forged(arena, key=ATTACKER)),
        401,
        "invalid_client",
        "pop_signature_invalid",
        counted=arena.clients["a"].client_id,
    )


def test_expired_is_still_refused(arena: Arena) -> None:
    pop = forged(arena, now=time.time() - 600, exp=int(time.time()) - 300)
    expect_refused(arena, token_request(arena, pop=pop), 401, "invalid_request", "pop_expired")


def test_residual_case_insensitive_edts(arena: Arena) -> None:
    """Accepted weakness of java-compat: the edts compare ignores letter case."""
    reply = arena.send(token_request(arena, pop=forged(arena, edts=edts(arena).swapcase())))
    assert reply.status == 200, reply.body


def test_residual_no_lifetime_cap_and_no_v(arena: Arena) -> None:
    """Accepted weakness of java-compat: no lifetime cap, and ``v`` is optional."""
    pop = forged(arena, exp=int(time.time()) + 86_400, v=...)
    reply = arena.send(token_request(arena, pop=pop))
    assert reply.status == 200, reply.body
