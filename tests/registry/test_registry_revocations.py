"""Revocations (docs/registry.md, "Revocations"), run against MemoryRegistry, SQLite and
PostgreSQL: token rows, cutoffs and their same-second rule, tokens_not_before, the change
sequence guards poll, pruning."""

from __future__ import annotations

import pytest
from registry_kit import FakeClock

from taap.core import PrivateKey
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._decoy import DECOY_CLIENT_ID
from taap.server.registry._rules import CUTOFF_SECONDS
from taap.server.registry.port import (
    LONGEST_TOKEN_SECONDS,
    REVOCATION_SLACK_SECONDS,
    Registry,
    RevocationEntry,
)


async def _client(registry: Registry, key: PrivateKey, *apis: str) -> str:
    record, _ = await registry.create_client(name="r", keys=[key.public], apis=list(apis))
    return record.client_id


async def _not_before(registry: Registry, client_id: str) -> int:
    record = await registry.get_client(client_id)
    assert record is not None
    return record.tokens_not_before


async def _all(registry: Registry, after: int = 0) -> list[RevocationEntry]:
    return list(await registry.revocations_after(after))


def test_cutoffs_outlive_the_longest_token_and_its_leeway() -> None:
    # TAAP_TOKEN_TTL is at most 86400 s and TAAP_LEEWAY at most 300 s (the settings' bounds).
    assert LONGEST_TOKEN_SECONDS == 86400
    assert REVOCATION_SLACK_SECONDS >= 300
    assert CUTOFF_SECONDS == LONGEST_TOKEN_SECONDS + REVOCATION_SLACK_SECONDS


async def test_revoke_client_tokens_writes_a_cutoff(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    clock.advance(0.75)  # mid-second: the cutoff is still the next whole second
    now = int(clock.now)
    assert await _not_before(registry, cid) == 0

    not_before = await registry.revoke_client_tokens(cid)

    # A token issued in this same second has iat == now < not_before: it counts as before.
    assert not_before == now + 1
    [entry] = await _all(registry)
    assert entry.kind == "client"
    assert (entry.client_id, entry.jti, entry.api_id) == (cid, None, None)
    assert entry.not_before == not_before
    assert entry.expires_at == not_before + CUTOFF_SECONDS
    record = await registry.get_client(cid)
    assert record is not None
    assert record.tokens_not_before == not_before


async def test_cutoffs_only_grow_and_readers_take_the_newest(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    first = await registry.revoke_client_tokens(cid)
    # Same second: a token issued in between was stamped iat = first, so this one is later.
    again = await registry.revoke_client_tokens(cid)
    clock.advance(5)
    later = await registry.revoke_client_tokens(cid)
    assert first + 1 == again < later == first + 5
    entries = await _all(registry)
    assert [e.not_before for e in entries] == [first, again, later]
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})
    assert await _not_before(registry, cid) == later
    listed = {c.client_id: c for c in await registry.list_clients()}
    assert listed[cid].tokens_not_before == later


async def test_disable_writes_a_cutoff_enable_does_not(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    other = await _client(registry, rsa_key)
    disabled = await registry.set_status(cid, "disabled")
    assert disabled.tokens_not_before == int(clock.now) + 1
    [entry] = await _all(registry)
    assert (entry.kind, entry.client_id, entry.not_before) == ("client", cid, int(clock.now) + 1)

    clock.advance(3)
    enabled = await registry.set_status(cid, "active")
    # Re-enabling revokes nothing more, and brings back nothing revoked.
    assert await _all(registry, entry.seq) == []
    assert enabled.tokens_not_before == entry.not_before
    assert await _not_before(registry, other) == 0


async def test_unsubscribe_writes_a_product_cutoff_subscribe_does_not(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key, "location", "sms-notification")
    record = await registry.unsubscribe(cid, "location")
    assert record.apis == ("sms-notification",)
    [entry] = await _all(registry)
    assert (entry.kind, entry.client_id, entry.api_id) == ("product", cid, "location")
    assert entry.not_before == int(clock.now) + 1
    assert entry.expires_at == entry.not_before + CUTOFF_SECONDS
    # The token server issues at or after the cutoff, so a re-subscription in the same second
    # yields tokens the cutoff does not catch.
    assert record.tokens_not_before == entry.not_before

    await registry.subscribe(cid, "location")
    assert await _all(registry, entry.seq) == []


async def test_each_cutoff_comes_after_the_one_before_in_the_same_second(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    """A token issued after a cutoff is stamped iat = that cutoff (docs/server.md, "Tokens
    issued right after a cutoff"); a change later in the same second must still catch it,
    whichever kind of cutoff came first."""
    cid = await _client(registry, rsa_key, "location", "sms-notification")
    clock.advance(0.1)
    product = (await registry.unsubscribe(cid, "location")).tokens_not_before
    assert product == int(clock.now) + 1
    clock.advance(0.2)
    every = await registry.revoke_client_tokens(cid)
    assert every == product + 1
    clock.advance(0.2)
    disabled = (await registry.set_status(cid, "disabled")).tokens_not_before
    assert disabled == every + 1
    clock.advance(0.2)
    again = (await registry.unsubscribe(cid, "sms-notification")).tokens_not_before
    assert again == disabled + 1
    entries = await _all(registry)
    assert [e.not_before for e in entries] == [product, every, disabled, again]
    assert all(e.expires_at == e.not_before + CUTOFF_SECONDS for e in entries)
    # A later second needs no move; another client's cutoffs do not move this one's.
    clock.advance(10)
    assert await registry.revoke_client_tokens(cid) == int(clock.now) + 1
    other = await _client(registry, rsa_key)
    assert await registry.revoke_client_tokens(other) == int(clock.now) + 1


async def test_failed_changes_write_no_revocation(registry: Registry, rsa_key: PrivateKey) -> None:
    cid = await _client(registry, rsa_key, "location")
    with pytest.raises(NotFoundError, match="unknown API"):
        await registry.unsubscribe(cid, "no-such-api")
    for call in (
        registry.set_status("taap-nobody", "disabled"),
        registry.unsubscribe("taap-nobody", "location"),
        registry.revoke_client_tokens("taap-nobody"),
        registry.revoke_tokens("taap-nobody", ["j1"]),
        registry.revoke_client_tokens(DECOY_CLIENT_ID),
        registry.revoke_tokens(DECOY_CLIENT_ID, ["j1"]),
    ):
        with pytest.raises(NotFoundError, match="unknown client"):
            await call
    assert await _all(registry) == []


async def test_revoke_tokens_keeps_each_jti_past_its_exp(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    exp = int(clock.now) + 3600
    await registry.revoke_tokens(cid, ["access-1", "id-1", "access-1"], expires_at=exp)
    entries = await _all(registry)
    assert [(e.kind, e.jti, e.client_id) for e in entries] == [
        ("token", "access-1", cid),
        ("token", "id-1", cid),
    ]
    # Kept past exp by the slack a guard still accepts the token for.
    assert {e.expires_at for e in entries} == {exp + REVOCATION_SLACK_SECONDS}
    assert {(e.not_before, e.api_id) for e in entries} == {(None, None)}
    # Token rows are no cutoff.
    assert await _not_before(registry, cid) == 0

    # Revoking again adds nothing (RFC 7009: the same answer, no growth).
    await registry.revoke_tokens(cid, ["access-1"], expires_at=exp)
    assert await _all(registry, entries[-1].seq) == []


async def test_revoke_tokens_expiry_edges(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    now = int(clock.now)
    # Unknown exp (an operator's jti): as long as the longest token lives.
    await registry.revoke_tokens(cid, ["unknown-exp"])
    # A far-future exp is no real token's: held to the same bound.
    await registry.revoke_tokens(cid, ["far"], expires_at=now + 10**9)
    # Expired so long ago that no guard accepts it any more: nothing to record.
    await registry.revoke_tokens(cid, ["gone"], expires_at=now - REVOCATION_SLACK_SECONDS - 1)
    # Expired, but still inside the leeway a guard allows: recorded.
    await registry.revoke_tokens(cid, ["leeway"], expires_at=now - 10)
    entries = {e.jti: e.expires_at for e in await _all(registry)}
    assert entries == {
        "unknown-exp": now + CUTOFF_SECONDS,
        "far": now + CUTOFF_SECONDS,
        "leeway": now - 10 + REVOCATION_SLACK_SECONDS,
    }


@pytest.mark.parametrize(
    "jtis",
    [[], "a-string-is-not-a-list", ["ok", ""], ["x" * 257], ["tab\there"], ["ok"] * 1001],
)
async def test_bad_jtis_refused(registry: Registry, rsa_key: PrivateKey, jtis: object) -> None:
    cid = await _client(registry, rsa_key)
    with pytest.raises(ConfigurationError, match="jti"):
        await registry.revoke_tokens(cid, jtis)  # type: ignore[arg-type]
    assert await _all(registry) == []


@pytest.mark.parametrize("bad", [1.5, True, "123"])
async def test_bad_expires_at_refused(registry: Registry, rsa_key: PrivateKey, bad: object) -> None:
    cid = await _client(registry, rsa_key)
    with pytest.raises(ConfigurationError, match="expires_at"):
        await registry.revoke_tokens(cid, ["j"], expires_at=bad)  # type: ignore[arg-type]


async def test_revocations_after_pages_in_seq_order(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    a = await _client(registry, rsa_key, "location")
    b = await _client(registry, rsa_key)
    await registry.revoke_tokens(a, ["t1"])
    await registry.set_status(b, "disabled")
    clock.advance(1)
    await registry.unsubscribe(a, "location")
    await registry.revoke_tokens(b, ["t2", "t3"])
    everything = await _all(registry)
    assert [(e.kind, e.client_id) for e in everything] == [
        ("token", a),
        ("client", b),
        ("product", a),
        ("token", b),
        ("token", b),
    ]
    seqs = [e.seq for e in everything]
    assert seqs == sorted(set(seqs))

    first = await registry.revocations_after(0, limit=2)
    assert list(first) == everything[:2]
    rest = await registry.revocations_after(first[-1].seq, limit=10)
    assert list(rest) == everything[2:]
    assert await registry.revocations_after(seqs[-1]) == []
    assert list(await registry.revocations_after(-5)) == everything
    assert await registry.revocations_after(2**70) == []


@pytest.mark.parametrize("limit", [0, -1, 100_001, True, 2.5])
async def test_bad_limit_refused(registry: Registry, limit: object) -> None:
    with pytest.raises(ConfigurationError, match="limit"):
        await registry.revocations_after(0, limit=limit)  # type: ignore[arg-type]


async def test_expired_rows_vanish_and_are_pruned_on_the_next_write(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    cid = await _client(registry, rsa_key)
    now = int(clock.now)
    await registry.revoke_tokens(cid, ["short"], expires_at=now + 60)
    not_before = await registry.revoke_client_tokens(cid)
    [short, cut] = await _all(registry)

    clock.advance(60 + REVOCATION_SLACK_SECONDS)  # the short token's row is at its last second
    assert [e.jti for e in await _all(registry)] == ["short", None]
    clock.advance(1)
    assert await _all(registry) == [cut]

    clock.now = cut.expires_at  # the cutoff's last second: still live
    assert await _not_before(registry, cid) == not_before
    clock.advance(1)
    assert await _all(registry) == []
    assert await _not_before(registry, cid) == 0

    # The next write prunes both rows; its own row still gets a higher seq than any before
    # (SQLite: AUTOINCREMENT, so a pruned seq is never handed out again).
    fresh = await registry.revoke_client_tokens(cid)
    [entry] = await _all(registry)
    assert entry.not_before == fresh
    assert entry.seq > max(short.seq, cut.seq)


async def test_remove_client_writes_a_cutoff_first_then_forgets_the_client(
    registry: Registry, rsa_key: PrivateKey
) -> None:
    cid = await _client(registry, rsa_key, "location")
    await registry.remove_client(cid)
    assert await registry.get_client(cid) is None
    assert cid not in {c.client_id for c in await registry.list_clients()}
    (row,) = await _all(registry)
    assert (row.kind, row.client_id) == ("client", cid)
    assert (row.not_before or 0) > 0
    with pytest.raises(NotFoundError):
        await registry.remove_client(cid)
    with pytest.raises(NotFoundError):
        await registry.remove_client(DECOY_CLIENT_ID)
    assert len(await _all(registry)) == 1
