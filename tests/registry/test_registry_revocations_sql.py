"""Revocations on the SQL back-ends only: rows really pruned, a change and its cutoff in one
transaction, changes seen by another registry (the CLI beside a server), and PostgreSQL writers
committing in ``seq`` order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from registry_kit import PEPPER, FakeClock

from taap.core import PrivateKey
from taap.errors import UnavailableError
from taap.server.registry import _sql_clients
from taap.server.registry._rules import NewRevocation
from taap.server.registry._sql_access import append_revocations
from taap.server.registry.database import parse_database_url
from taap.server.registry.sql import open_registry


def _rows(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(parse_database_url(url).url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT seq, kind, client_id FROM revocations ORDER BY seq")
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


async def test_expired_rows_are_deleted_by_the_next_write(
    sql_url: str, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    registry = await open_registry(sql_url, pepper=PEPPER, clock=clock)
    try:
        record, _ = await registry.create_client(name="p", keys=[rsa_key.public], apis=[])
        cid = record.client_id
        await registry.revoke_tokens(cid, ["a"], expires_at=int(clock.now))
        await registry.revoke_client_tokens(cid)
        assert [r[1] for r in _rows(sql_url)] == ["token", "client"]
        clock.advance(2 * 86400)
        assert [r[1] for r in _rows(sql_url)] == ["token", "client"]  # reads prune nothing
        await registry.set_status(cid, "disabled")
        assert [r[1:] for r in _rows(sql_url)] == [("client", cid)]
    finally:
        await registry.close()


async def test_a_failed_cutoff_undoes_the_disable(
    sql_url: str, rsa_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = await open_registry(sql_url, pepper=PEPPER)
    try:
        record, _ = await registry.create_client(name="t", keys=[rsa_key.public], apis=["location"])

        def failing(*args: Any) -> None:
            append_revocations(*args)
            raise UnavailableError(log_detail="injected after the cutoff was written")

        monkeypatch.setattr(_sql_clients, "append_revocations", failing)
        with pytest.raises(UnavailableError):
            await registry.set_status(record.client_id, "disabled")
        with pytest.raises(UnavailableError):
            await registry.unsubscribe(record.client_id, "location")
        # Both changes rolled back with their cutoffs: all or nothing.
        after = await registry.get_client(record.client_id)
        assert after is not None
        assert (after.status, after.apis, after.tokens_not_before) == ("active", ("location",), 0)
        assert _rows(sql_url) == []
    finally:
        await registry.close()


async def test_another_registry_sees_revocations_at_once(sql_url: str, rsa_key: PrivateKey) -> None:
    server = await open_registry(sql_url, pepper=PEPPER)
    cli = await open_registry(sql_url, pepper=PEPPER)
    try:
        record, _ = await cli.create_client(name="x", keys=[rsa_key.public], apis=[])
        seen = await server.revocations_after(0)
        cursor = seen[-1].seq if seen else 0
        not_before = await cli.revoke_client_tokens(record.client_id)
        [entry] = await server.revocations_after(cursor)
        assert (entry.kind, entry.not_before) == ("client", not_before)
        fetched = await server.get_client(record.client_id)
        assert fetched is not None
        assert fetched.tokens_not_before == not_before
    finally:
        await server.close()
        await cli.close()


async def test_postgres_revocation_writers_commit_in_seq_order(pg_url: str) -> None:
    # A reader that has seen seq n must never later find a smaller seq appear: the second
    # writer waits for the first one's commit before it takes its seq.
    engine = sa.create_engine(parse_database_url(pg_url).url)
    now = datetime.now(UTC)
    row = NewRevocation(kind="client", not_before=1, expires_at=2**40)
    finished = threading.Event()

    def second_writer() -> None:
        with engine.begin() as conn:
            append_revocations(conn, "second", [row], now)
        finished.set()

    try:
        first = engine.connect()
        transaction = first.begin()
        append_revocations(first, "first", [row], now)
        thread = threading.Thread(target=second_writer)
        thread.start()
        try:
            assert not finished.wait(0.5), "a second writer went ahead of an open one"
        finally:
            transaction.commit()
            first.close()
        assert finished.wait(30)
        thread.join()
        assert [r[2] for r in _rows(pg_url)] == ["first", "second"]
    finally:
        engine.dispose()
