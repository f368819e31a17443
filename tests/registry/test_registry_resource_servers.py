"""Resource servers (docs/registry.md, "Resource servers"), run against MemoryRegistry, SQLite
and PostgreSQL: generated ids and secrets, status, rotation with grace, removal, and secrets
kept out of every repr and error."""

from __future__ import annotations

import logging
import re

import pytest
from registry_kit import PEPPER, FakeClock

from taap.errors import ConfigurationError, NotFoundError, TaapError
from taap.server.registry.port import Registry
from taap.server.registry.secrets import hash_secret, verify_secret

RS_ID = re.compile(r"rs_[A-Za-z0-9]{32}")


async def test_create_generates_id_and_strong_secret(registry: Registry) -> None:
    record, secret = await registry.create_resource_server(name="  Gateway  ")
    assert RS_ID.fullmatch(record.id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert (record.name, record.status) == ("Gateway", "active")
    assert record.secret_digests == (hash_secret(PEPPER, secret),)
    assert record.created_at.utcoffset() is not None
    assert record.created_at == record.updated_at

    fetched = await registry.get_resource_server(record.id)
    assert fetched == record
    assert verify_secret(PEPPER, secret, fetched.secret_digests)
    assert not verify_secret(PEPPER, secret + "x", fetched.secret_digests)

    other, other_secret = await registry.create_resource_server(name="Other")
    assert other.id != record.id
    assert other_secret != secret


@pytest.mark.parametrize("hostile", ["", "rs_", "rs_" + "a" * 31, "x" * 10_000, "a\x00b", "é"])
async def test_unknown_or_hostile_ids(registry: Registry, hostile: str) -> None:
    assert await registry.get_resource_server(hostile) is None
    assert await registry.get_resource_server("rs_" + "a" * 32) is None
    for call in (
        registry.set_resource_server_status(hostile, "disabled"),
        registry.rotate_resource_server_secret(hostile),
        registry.remove_resource_server(hostile),
    ):
        with pytest.raises(NotFoundError, match="unknown resource server") as caught:
            await call
        assert len(caught.value.description) < 120  # a 10 kB id is not echoed back


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "tab\there"])
async def test_bad_name_refused(registry: Registry, bad: str) -> None:
    with pytest.raises(ConfigurationError, match="resource server name"):
        await registry.create_resource_server(name=bad)
    assert await registry.list_resource_servers() == []


async def test_disable_enable(registry: Registry, clock: FakeClock) -> None:
    record, _ = await registry.create_resource_server(name="g")
    clock.advance(5)
    disabled = await registry.set_resource_server_status(record.id, "disabled")
    assert disabled.status == "disabled"
    assert disabled.updated_at > record.updated_at
    assert disabled.secret_digests == record.secret_digests
    assert await registry.get_resource_server(record.id) == disabled
    enabled = await registry.set_resource_server_status(record.id, "active")
    assert enabled.status == "active"
    with pytest.raises(ConfigurationError, match="status"):
        await registry.set_resource_server_status(record.id, "gone")  # type: ignore[arg-type]


async def test_rotate_replaces_at_once(registry: Registry) -> None:
    record, old = await registry.create_resource_server(name="g")
    new = await registry.rotate_resource_server_secret(record.id)
    assert new != old
    fetched = await registry.get_resource_server(record.id)
    assert fetched is not None
    assert fetched.secret_digests == (hash_secret(PEPPER, new),)


async def test_rotate_with_grace_keeps_previous_until_it_ends(
    registry: Registry, clock: FakeClock
) -> None:
    record, first = await registry.create_resource_server(name="g")
    second = await registry.rotate_resource_server_secret(record.id, grace=30)
    fetched = await registry.get_resource_server(record.id)
    assert fetched is not None
    # The current secret first, then the previous one during its grace period.
    assert fetched.secret_digests == (hash_secret(PEPPER, second), hash_secret(PEPPER, first))
    third = await registry.rotate_resource_server_secret(record.id, grace=30)
    fetched = await registry.get_resource_server(record.id)
    assert fetched is not None
    # At most two live secrets: the first one is gone with the second rotation.
    assert fetched.secret_digests == (hash_secret(PEPPER, third), hash_secret(PEPPER, second))
    clock.advance(31)
    fetched = await registry.get_resource_server(record.id)
    assert fetched is not None
    assert fetched.secret_digests == (hash_secret(PEPPER, third),)
    listed = await registry.list_resource_servers()
    assert [r.secret_digests for r in listed] == [fetched.secret_digests]
    with pytest.raises(ConfigurationError, match="grace"):
        await registry.rotate_resource_server_secret(record.id, grace=-1)


async def test_list_oldest_first_and_remove(registry: Registry, clock: FakeClock) -> None:
    a, _ = await registry.create_resource_server(name="a")
    clock.advance(1)
    b, _ = await registry.create_resource_server(name="b")
    assert [r.id for r in await registry.list_resource_servers()] == [a.id, b.id]
    await registry.remove_resource_server(a.id)
    assert await registry.get_resource_server(a.id) is None
    assert [r.id for r in await registry.list_resource_servers()] == [b.id]
    with pytest.raises(NotFoundError, match="unknown resource server"):
        await registry.remove_resource_server(a.id)
    with pytest.raises(NotFoundError):
        await registry.rotate_resource_server_secret(a.id)
    with pytest.raises(NotFoundError):
        await registry.set_resource_server_status(a.id, "active")


async def test_resource_servers_are_not_clients(registry: Registry) -> None:
    record, _ = await registry.create_resource_server(name="g")
    assert await registry.get_client(record.id) is None
    assert await registry.list_clients() == []


async def test_secrets_stay_out_of_reprs_errors_and_logs(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    record, secret = await registry.create_resource_server(name="g")
    rotated = await registry.rotate_resource_server_secret(record.id, grace=10)
    fetched = await registry.get_resource_server(record.id)
    texts = [repr(record), str(record), repr(fetched), repr(registry)]
    texts += [repr(r) for r in await registry.list_resource_servers()]
    try:
        await registry.set_resource_server_status(record.id, "bogus")  # type: ignore[arg-type]
    except TaapError as exc:
        texts += [str(exc), exc.description, str(exc.log_detail)]
    texts.append(caplog.text)
    digests = [d.hex() for d in fetched.secret_digests] if fetched else []
    for text in texts:
        for value in (secret, rotated, *digests):
            assert value not in text
    assert "secrets=2" in repr(fetched)
