"""Alembic migrations in the package: upgrade from nothing, downgrade to nothing, on both SQL
back-ends; the migrated schema is the one the code queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from registry_kit import PEPPER, PgDatabases

from taap.core import PrivateKey
from taap.portal import tables as portal_tables
from taap.server.registry import migrations
from taap.server.registry._decoy import DECOY_CLIENT_ID
from taap.server.registry._sql_tables import VERSION_TABLE, metadata
from taap.server.registry.database import parse_database_url
from taap.server.registry.sql import downgrade_database, open_registry, upgrade_database
from taap.server.usage import tables as usage_tables

TABLES = (
    {
        "clients",
        "client_secrets",
        "client_keys",
        "api_products",
        "subscriptions",
        "signing_keys",
        "revocations",
        "resource_servers",
        "resource_server_secrets",
    }
    | set(portal_tables.metadata.tables)
    | set(usage_tables.metadata.tables)
)
HEAD = "0005"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    name = databases.create()
    yield databases.url(name)
    databases.drop(name)


def _inspect(url: str) -> tuple[set[str], dict[str, dict[str, bool]], int, int]:
    engine = sa.create_engine(parse_database_url(url).url)
    try:
        inspector = sa.inspect(engine)
        names = set(inspector.get_table_names())
        columns = {
            t: {c["name"]: bool(c["nullable"]) for c in inspector.get_columns(t)}
            for t in names & TABLES
        }
        with engine.connect() as conn:
            products = signing = -1
            if "api_products" in names:
                products = conn.execute(sa.text("SELECT count(*) FROM api_products")).scalar_one()
                signing = conn.execute(sa.text("SELECT count(*) FROM signing_keys")).scalar_one()
        return names, columns, products, signing
    finally:
        engine.dispose()


def test_head_is_shipped_in_the_package() -> None:
    assert migrations.head_revision() == HEAD
    versions = Path(migrations.__file__).parent / "versions"
    assert any(p.suffix == ".py" for p in versions.iterdir())


async def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    assert await upgrade_database(empty_url) == HEAD
    names, columns, products, signing = _inspect(empty_url)
    assert TABLES | {VERSION_TABLE} <= names
    assert products == 5
    assert signing == 1
    # The schema the migration built is the one the code's table definitions describe.
    for table in [
        *metadata.sorted_tables,
        *portal_tables.metadata.sorted_tables,
        *usage_tables.metadata.sorted_tables,
    ]:
        expected = {c.name: bool(c.nullable) for c in table.columns}
        assert columns[table.name] == expected, table.name

    # Running it again changes nothing (first start of a second node).
    assert await upgrade_database(empty_url) == HEAD
    assert _inspect(empty_url)[3] == 1

    assert await downgrade_database(empty_url, "base") is None
    names, _, _, _ = _inspect(empty_url)
    assert not names & TABLES

    assert await upgrade_database(empty_url) == HEAD
    names, _, products, signing = _inspect(empty_url)
    assert names >= TABLES
    assert (products, signing) == (5, 1)


async def test_upgrade_to_base_creates_nothing(empty_url: str) -> None:
    assert await upgrade_database(empty_url, revision="base") is None
    names, _, _, _ = _inspect(empty_url)
    assert not names & TABLES


def _client_ids(url: str) -> list[str]:
    engine = sa.create_engine(parse_database_url(url).url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id FROM clients ORDER BY id")).scalars()
            return [str(r) for r in rows]
    finally:
        engine.dispose()


async def test_decoy_migration_upgrades_and_downgrades(empty_url: str, rsa_key: PrivateKey) -> None:
    assert await upgrade_database(empty_url, revision="0001") == "0001"
    assert _client_ids(empty_url) == []
    assert await upgrade_database(empty_url) == HEAD
    assert _client_ids(empty_url) == [DECOY_CLIENT_ID]
    registry = await open_registry(empty_url, pepper=PEPPER)
    try:
        record, _ = await registry.create_client(
            name="kept", keys=[rsa_key.public], apis=["connectivity"]
        )
    finally:
        await registry.close()

    # Down to 0001: the decoy and only the decoy goes (with its secret, key, subscription).
    assert await downgrade_database(empty_url, "0001") == "0001"
    assert _client_ids(empty_url) == [record.client_id]
    engine = sa.create_engine(parse_database_url(empty_url).url)
    try:
        with engine.connect() as conn:
            for table in ("client_secrets", "client_keys", "subscriptions"):
                owners = conn.execute(sa.text(f"SELECT client_id FROM {table}")).scalars()
                assert set(owners) == {record.client_id}, table
    finally:
        engine.dispose()

    assert await upgrade_database(empty_url) == HEAD
    assert sorted(_client_ids(empty_url)) == sorted([DECOY_CLIENT_ID, record.client_id])


ACCESS_TABLES = {"revocations", "resource_servers", "resource_server_secrets"}


async def test_revocations_migration_upgrades_and_downgrades(
    empty_url: str, rsa_key: PrivateKey
) -> None:
    assert await upgrade_database(empty_url, revision="0002") == "0002"
    assert not _inspect(empty_url)[0] & ACCESS_TABLES
    assert await upgrade_database(empty_url) == HEAD
    engine = sa.create_engine(parse_database_url(empty_url).url)
    try:
        inspector = sa.inspect(engine)
        indexes = {i["name"] for i in inspector.get_indexes("revocations")}
        assert {"ix_revocations_expires_at", "ix_revocations_client_id"} <= indexes
        # Revocations outlive their client: no foreign key ties them to it.
        assert inspector.get_foreign_keys("revocations") == []
        checks = {c["name"] for c in inspector.get_check_constraints("revocations")}
        assert "ck_revocations_kind" in checks
    finally:
        engine.dispose()

    registry = await open_registry(empty_url, pepper=PEPPER)
    try:
        record, _ = await registry.create_client(name="kept", keys=[rsa_key.public], apis=[])
        await registry.set_status(record.client_id, "disabled")
        await registry.create_resource_server(name="gone with 0003")
    finally:
        await registry.close()

    # Down to 0002: the three tables go, the clients stay as they were.
    assert await downgrade_database(empty_url, "0002") == "0002"
    assert not _inspect(empty_url)[0] & ACCESS_TABLES
    assert sorted(_client_ids(empty_url)) == sorted([DECOY_CLIENT_ID, record.client_id])

    assert await upgrade_database(empty_url) == HEAD
    registry = await open_registry(empty_url, pepper=PEPPER)
    try:
        assert await registry.revocations_after(0) == []
        assert await registry.list_resource_servers() == []
        again = await registry.get_client(record.client_id)
        assert again is not None
        assert (again.status, again.tokens_not_before) == ("disabled", 0)
    finally:
        await registry.close()


def test_revocation_kinds_are_checked_by_the_database(sqlite_url: str) -> None:
    engine = sa.create_engine(parse_database_url(sqlite_url).url)
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO revocations (kind, client_id, expires_at, created_at) "
                    "VALUES ('bogus', 'c', 1, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()


PORTAL_TABLES = set(portal_tables.metadata.tables)


async def test_portal_migration_upgrades_and_downgrades(empty_url: str) -> None:
    assert await upgrade_database(empty_url, revision="0003") == "0003"
    assert not _inspect(empty_url)[0] & PORTAL_TABLES
    assert await upgrade_database(empty_url) == HEAD
    names = _inspect(empty_url)[0]
    assert names >= PORTAL_TABLES
    engine = sa.create_engine(parse_database_url(empty_url).url)
    try:
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("portal_sign_in_codes")}
        assert "ix_portal_sign_in_codes_email" in indexes
    finally:
        engine.dispose()
    assert await downgrade_database(empty_url, "0003") == "0003"
    names = _inspect(empty_url)[0]
    assert not names & PORTAL_TABLES
    assert "clients" in names


async def test_usage_migration_upgrades_and_downgrades(empty_url: str) -> None:
    assert await upgrade_database(empty_url, revision="0004") == "0004"
    assert "usage_counts" not in _inspect(empty_url)[0]
    assert await upgrade_database(empty_url) == HEAD
    engine = sa.create_engine(parse_database_url(empty_url).url)
    try:
        inspector = sa.inspect(engine)
        key = inspector.get_pk_constraint("usage_counts")["constrained_columns"]
        assert key == ["client_id", "kind", "error_code", "minute"]
        indexes = {i["name"] for i in inspector.get_indexes("usage_counts")}
        assert "ix_usage_counts_minute" in indexes
    finally:
        engine.dispose()
    assert await downgrade_database(empty_url, "0004") == "0004"
    names = _inspect(empty_url)[0]
    assert "usage_counts" not in names
    assert names >= PORTAL_TABLES
