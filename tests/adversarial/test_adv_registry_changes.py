"""Disabled clients, rotated secrets, removed keys and dropped subscriptions (SECURITY.md A6),
changed with the real ``taap clients …`` CLI against the running server's database, then
attacked over HTTP. The registry snapshot of each attack is taken after the CLI change."""

from __future__ import annotations

import json
import time

import pytest
from adversarial_kit import Arena, cli, expect_refused, http_request
from token_cases import token_request

from kit.wire import basic
from taap.core import PrivateKey, build_pop_token, request_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

AUTH = (401, "invalid_client", "client_auth_failed")
#: the guard of ``--with-sample-apis`` sees a change within this many seconds (5 by default)
MAX_AGE = 1.0
SERVER_ENV = {"TAAP_REVOCATION_MAX_AGE": str(MAX_AGE)}
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def guarded_call(access: str, key: PrivateKey) -> bytes:
    base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {access}")]
    pop = build_pop_token(request_pairs("GET", DEVICE, base), key)
    return http_request("GET", DEVICE, [*base, ("X-Authorization", pop)])


def past_the_bound() -> None:
    """A request arriving later than this after a change is judged with it (docs/guard.md)."""
    time.sleep(MAX_AGE + 0.1)


def test_disabled_client_gets_nothing(arena: Arena) -> None:
    victim = arena.clients["disabled"]
    issued = arena.send(token_request(arena, "disabled"))
    assert issued.status == 200
    access = issued.json()["access_token"]
    cli(arena, "clients", "disable", victim.client_id)
    expect_refused(arena, token_request(arena, "disabled"), *AUTH, counted=victim.client_id)
    # v6 credentials in the body do not help either, nor does the scheme's case.
    expect_refused(
        arena,
        token_request(arena, "disabled", auth=victim.basic.replace("Basic", "BASIC")),
        *AUTH,
        counted=victim.client_id,
    )
    # A token issued before the disable stops working at the guard within the bound.
    past_the_bound()
    refused = arena.send(guarded_call(access, victim.key))
    assert refused.status == 401, refused.body
    assert refused.json()["error_code"] == "token_revoked"
    cli(arena, "clients", "enable", victim.client_id)
    assert arena.send(token_request(arena, "disabled")).status == 200


def test_rotated_secret_refuses_the_old_one(arena: Arena) -> None:
    client = arena.clients["rotated"]
    old = client.secret
    out = json.loads(cli(arena, "clients", "rotate-secret", client.client_id, "--json"))
    new = out["client_secret"]
    assert new != old
    expect_refused(
        arena,
        token_request(arena, "rotated", auth=basic(client.client_id, old)),
        *AUTH,
        counted=client.client_id,
    )
    client.secret = new
    assert arena.send(token_request(arena, "rotated")).status == 200
    assert new not in arena.log.read_text(errors="replace")


def test_grace_period_ends(arena: Arena) -> None:
    client = arena.clients["rotated"]
    old = client.secret
    rotated_at = time.monotonic()
    out = json.loads(
        cli(arena, "clients", "rotate-secret", client.client_id, "--grace", "3", "--json")
    )
    written_by = time.monotonic()  # the grace started between rotated_at and now
    old_auth = basic(client.client_id, old)
    during = arena.send(token_request(arena, "rotated", auth=old_auth))
    # rotated_at precedes the write, so this bounds the time spent in the grace from above.
    if time.monotonic() - rotated_at < 2.8:
        assert during.status == 200, during.body
    time.sleep(max(0.0, written_by + 3.2 - time.monotonic()))
    expect_refused(
        arena, token_request(arena, "rotated", auth=old_auth), *AUTH, counted=client.client_id
    )
    client.secret = out["client_secret"]
    assert arena.send(token_request(arena, "rotated")).status == 200


def test_removed_key_no_longer_signs(arena: Arena, third_key: object) -> None:
    client = arena.clients["twokeys"]
    removed = client.key
    assert arena.send(token_request(arena, "twokeys")).status == 200
    cli(arena, "clients", "remove-key", client.client_id, removed.thumbprint)
    expect_refused(
        arena,
        token_request(arena, "twokeys"),
        401,
        "invalid_client",
        "pop_signature_invalid",
        counted=client.client_id,
    )
    from taap.core import PrivateKey

    assert isinstance(third_key, PrivateKey)
    assert arena.send(token_request(arena, "twokeys", key=third_key)).status == 200


def test_unsubscribed_client_gets_no_token(arena: Arena) -> None:
    client = arena.clients["b"]
    issued = arena.send(token_request(arena, "b"))
    assert issued.status == 200
    cli(arena, "clients", "unsubscribe", client.client_id, "connectivity")
    expect_refused(arena, token_request(arena, "b"), 403, "access_denied", "not_subscribed")
    past_the_bound()  # and the token issued before no longer opens the product
    refused = arena.send(guarded_call(issued.json()["access_token"], client.key))
    assert refused.status == 403, refused.body
    assert refused.json()["error_code"] == "not_subscribed"
    cli(arena, "clients", "subscribe", client.client_id, "connectivity")
    assert arena.send(token_request(arena, "b")).status == 200


def test_log_is_clean(arena: Arena) -> None:
    """After all of the above: no stack trace, no secret, no whole token in the server output."""
    text = arena.log.read_text(errors="replace")
    assert "Traceback" not in text
    for client in arena.clients.values():
        assert client.secret not in text
    for tokens in arena.tokens.values():
        assert tokens["access_token"] not in text
        assert tokens["access_token"].split(".")[2] not in text
