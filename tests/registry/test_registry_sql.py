"""SqlRegistry beyond the shared contract: several processes on one database, what is stored,
parse caching, bootstrap races, failures as 503, async drivers, encrypted signing keys."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from registry_kit import PEPPER, PgDatabases

from kit.processes import free_port
from taap.core import PrivateKey
from taap.errors import ConfigurationError, UnavailableError
from taap.server.registry.database import parse_database_url
from taap.server.registry.port import DEFAULT_PRODUCTS, ApiProduct
from taap.server.registry.secrets import verify_secret
from taap.server.registry.sql import SqlRegistry, open_registry


async def test_changes_by_another_process_seen_on_next_request(
    sql_url: str, rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    # TAAP_REGISTRY_CACHE=0: the CLI (or another node) changes, the server sees it at once.
    server = await open_registry(sql_url, pepper=PEPPER)
    cli = await open_registry(sql_url, pepper=PEPPER)
    try:
        record, secret = await cli.create_client(name="a", keys=[rsa_key.public], apis=[])
        seen = await server.get_client(record.client_id)
        assert seen is not None
        assert seen.status == "active"
        await cli.set_status(record.client_id, "disabled")
        seen = await server.get_client(record.client_id)
        assert seen is not None
        assert seen.status == "disabled"
        await cli.add_key(record.client_id, other_key.public)
        await cli.subscribe(record.client_id, "location")
        new = await cli.rotate_secret(record.client_id)
        seen = await server.get_client(record.client_id)
        assert seen is not None
        assert [k.thumbprint for k in seen.keys] == [rsa_key.thumbprint, other_key.thumbprint]
        assert seen.apis == ("location",)
        assert verify_secret(PEPPER, new, seen.secret_digests)
        assert not verify_secret(PEPPER, secret, seen.secret_digests)
        rotated = await cli.rotate_signing_key()
        assert (await server.signing_keys())[0].kid == rotated.kid
    finally:
        await server.close()
        await cli.close()


async def test_public_keys_parsed_once_per_process(sql_url: str, rsa_key: PrivateKey) -> None:
    writer = await open_registry(sql_url, pepper=PEPPER)
    reader = await open_registry(sql_url, pepper=PEPPER)
    try:
        record, _ = await writer.create_client(name="a", keys=[rsa_key.public], apis=[])
        first = await reader.get_client(record.client_id)
        second = await reader.get_client(record.client_id)
        assert first is not None
        assert second is not None
        assert first.keys[0] is second.keys[0]  # the cached object, not a re-parse
        assert first.keys[0] == rsa_key.public
        keys_a = await reader.signing_keys()
        keys_b = await reader.signing_keys()
        assert keys_a[0].key is keys_b[0].key
    finally:
        await writer.close()
        await reader.close()


async def test_data_survives_reopen_and_bootstrap_is_idempotent(
    sql_url: str, rsa_key: PrivateKey
) -> None:
    first = await open_registry(sql_url, pepper=PEPPER)
    record, secret = await first.create_client(
        name="keep", keys=[rsa_key.public], apis=["location"]
    )
    kids = [k.kid for k in await first.signing_keys()]
    await first.close()
    again = await open_registry(sql_url, pepper=PEPPER)
    try:
        found = await again.get_client(record.client_id)
        assert found is not None
        assert found.name == "keep"
        assert verify_secret(PEPPER, secret, found.secret_digests)
        assert [k.kid for k in await again.signing_keys()] == kids
    finally:
        await again.close()


async def test_other_pepper_cannot_verify(sql_url: str, rsa_key: PrivateKey) -> None:
    right = await open_registry(sql_url, pepper=PEPPER)
    wrong = await open_registry(sql_url, pepper=b"another-pepper-of-16+chars")
    try:
        record, secret = await right.create_client(name="a", keys=[rsa_key.public], apis=[])
        found = await wrong.get_client(record.client_id)
        assert found is not None
        assert not verify_secret(b"another-pepper-of-16+chars", secret, found.secret_digests)
        assert verify_secret(PEPPER, secret, found.secret_digests)
    finally:
        await right.close()
        await wrong.close()


async def test_only_digests_are_stored(sql_url: str, rsa_key: PrivateKey) -> None:
    registry = await open_registry(sql_url, pepper=PEPPER)
    try:
        record, secret = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    finally:
        await registry.close()
    engine = sa.create_engine(parse_database_url(sql_url).url)
    try:
        with engine.connect() as conn:
            dump = [
                str(row)
                for table in ("clients", "client_secrets", "client_keys", "subscriptions")
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            ]
    finally:
        engine.dispose()
    text = "\n".join(dump)
    assert secret not in text
    assert record.secret_digests[0].hex() in text
    if sql_url.startswith("sqlite"):
        raw = Path(parse_database_url(sql_url).sqlite_path or "").read_bytes()
        assert secret.encode() not in raw


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_first_start_makes_one_signing_key(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/race.db"
    else:
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        url = databases.url(databases.create())
    registries = await asyncio.gather(*(open_registry(url, pepper=PEPPER) for _ in range(3)))
    try:
        kids = {tuple(k.kid for k in await r.signing_keys()) for r in registries}
        assert len(kids) == 1
        assert len(next(iter(kids))) == 1
    finally:
        for r in registries:
            await r.close()


async def test_postgres_unreachable_is_503_without_password(postgres_url: str) -> None:
    url = f"postgresql://taap:hunter2-secret@127.0.0.1:{free_port()}/taap"
    with pytest.raises(UnavailableError) as info:
        await open_registry(url, pepper=PEPPER)
    error = info.value
    assert error.status_code == 503
    assert error.error_code == "unavailable"
    assert error.retry_after is not None
    assert isinstance(error.__cause__, sa.exc.OperationalError)
    for text in (error.description, error.log_detail or "", str(error.to_dict())):
        assert "hunter2" not in text
    assert "refused" in (error.log_detail or "").lower()


async def test_database_down_after_start_is_503(
    pg_databases: PgDatabases, pg_template: str, rsa_key: PrivateKey
) -> None:
    name = pg_databases.create(template=pg_template)
    registry = await open_registry(pg_databases.url(name), pepper=PEPPER)
    try:
        record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
        pg_databases.drop(name)  # WITH (FORCE): the pooled connections die with it
        with pytest.raises(UnavailableError) as info:
            await registry.get_client(record.client_id)
        assert info.value.__cause__ is not None
        assert await registry.ping() is False
        with pytest.raises(UnavailableError):
            await registry.rotate_secret(record.client_id)
    finally:
        await registry.close()


async def test_killed_connections_are_replaced(
    pg_databases: PgDatabases, pg_url: str, rsa_key: PrivateKey
) -> None:
    """A database restart kills pooled connections: the next reads still answer."""
    registry = await open_registry(pg_url, pepper=PEPPER)
    try:
        record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
        # Fill the pool with several live connections first.
        await asyncio.gather(*(registry.get_client(record.client_id) for _ in range(6)))
        name = parse_database_url(pg_url).url.database
        with psycopg.connect(pg_databases.admin, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 1
        for _ in range(3):
            found = await registry.get_client(record.client_id)
            assert found is not None
        assert await registry.ping() is True
        assert len(await registry.list_clients()) == 1
    finally:
        await registry.close()


async def test_sqlite_garbage_file_is_503(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UnavailableError) as info:
        await open_registry(f"sqlite:///{path}", pepper=PEPPER)
    assert isinstance(info.value.__cause__, sa.exc.DatabaseError)


async def test_sqlite_missing_directory_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        await open_registry(f"sqlite:///{tmp_path}/nope/taap.db", pepper=PEPPER)


async def test_sqlite_file_is_private(tmp_path: Path) -> None:
    registry = await open_registry(f"sqlite:///{tmp_path}/p.db", pepper=PEPPER)
    await registry.close()
    assert (tmp_path / "p.db").stat().st_mode & 0o077 == 0


async def test_migrate_false_refuses_an_old_schema(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="taap db upgrade"):
        await open_registry(f"sqlite:///{tmp_path}/new.db", pepper=PEPPER, migrate=False)


async def test_migrate_false_accepts_a_current_schema(sqlite_url: str) -> None:
    registry = await open_registry(sqlite_url, pepper=PEPPER, migrate=False)
    try:
        assert len(await registry.signing_keys()) == 1
    finally:
        await registry.close()


@pytest.mark.parametrize("mode", ["inline", "thread"])
async def test_io_modes(sql_url: str, mode: str, rsa_key: PrivateKey) -> None:
    registry = await open_registry(sql_url, pepper=PEPPER, mode=mode)
    try:
        assert isinstance(registry, SqlRegistry)
        assert registry.mode == mode
        record, _ = await registry.create_client(name="m", keys=[rsa_key.public], apis=[])
        assert await registry.get_client(record.client_id) is not None
    finally:
        await registry.close()


def test_default_modes(sqlite_url: str, pg_url: str) -> None:
    async def modes() -> list[str]:
        found = []
        for url in (sqlite_url, pg_url):
            registry = await open_registry(url, pepper=PEPPER)
            found.append(registry.mode)
            await registry.close()
        return found

    assert asyncio.run(modes()) == ["inline", "thread"]


async def test_bad_mode_refused(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError, match="mode"):
        await open_registry(sqlite_url, pepper=PEPPER, mode="async")
    with pytest.raises(ConfigurationError, match="mode"):
        await open_registry(sqlite_url, pepper=PEPPER, mode="fast")


async def test_explicit_async_driver(pg_url: str, rsa_key: PrivateKey) -> None:
    url = parse_database_url(pg_url).url.set(drivername="postgresql+asyncpg")
    text = url.render_as_string(hide_password=False)
    installed = all(importlib.util.find_spec(m) for m in ("greenlet", "asyncpg"))
    if not installed:
        # Not a dependency of taap: the URL is understood and the missing piece is named.
        with pytest.raises(ConfigurationError, match=r"not installed.*greenlet asyncpg"):
            await open_registry(text, pepper=PEPPER)
        return
    registry = await open_registry(text, pepper=PEPPER)
    try:
        assert registry.mode == "async"
        record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
        found = await registry.get_client(record.client_id)
        assert found is not None
        assert found.keys == (rsa_key.public,)
    finally:
        await registry.close()


async def test_signing_keys_encrypted_at_rest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/enc.db"
    registry = await open_registry(url, pepper=PEPPER, key_password=b"kek-password")
    try:
        kid = (await registry.signing_keys())[0].kid
    finally:
        await registry.close()
    engine = sa.create_engine(parse_database_url(url).url)
    with engine.connect() as conn:
        pem = conn.execute(sa.text("SELECT pem FROM signing_keys")).scalar_one()
    engine.dispose()
    assert "BEGIN ENCRYPTED PRIVATE KEY" in pem
    again = await open_registry(url, pepper=PEPPER, key_password=b"kek-password")
    try:
        assert (await again.signing_keys())[0].kid == kid
    finally:
        await again.close()
    without = await open_registry(url, pepper=PEPPER)
    try:
        with pytest.raises(ConfigurationError, match="is TAAP_KEY_ENCRYPTION_KEY right"):
            await without.signing_keys()
    finally:
        await without.close()


async def test_contract_reset_restores_first_start_state(
    pg_databases: PgDatabases, pg_contract: tuple[str, str], rsa_key: PrivateKey
) -> None:
    name, kid = pg_contract
    url = pg_databases.url(name)
    registry = await open_registry(url, pepper=PEPPER)
    try:
        await registry.create_client(name="a", keys=[rsa_key.public], apis=["location"])
        await registry.create_product(
            ApiProduct(id="extra", name="Extra", token_server="v2", base_path="/extra")
        )
        await registry.rotate_signing_key()
        await registry.set_status((await registry.list_clients())[0].client_id, "disabled")
        await registry.create_resource_server(name="rs")
        pg_databases.reset(name, kid)
        assert await registry.list_clients() == []
        assert await registry.revocations_after(0) == []
        assert await registry.list_resource_servers() == []
        assert list(await registry.list_products()) == sorted(DEFAULT_PRODUCTS, key=lambda p: p.id)
        keys = await registry.all_signing_keys()
        assert [(k.kid, k.publish_until, k.retired) for k in keys] == [(kid, None, False)]
    finally:
        await registry.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_encrypt_signing_keys_rewrites_in_one_transaction(
    backend: str, request: pytest.FixtureRequest
) -> None:
    # Both back-ends: plain keys are rewritten under the key-encryption key, and a key that
    # opens with neither the current nor the previous key leaves every row as it was.
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    plain = await open_registry(url, pepper=PEPPER)
    try:
        with pytest.raises(ConfigurationError, match="set TAAP_KEY_ENCRYPTION_KEY"):
            await plain.encrypt_signing_keys()
        await plain.rotate_signing_key()
        kids = {k.kid for k in await plain.all_signing_keys()}
    finally:
        await plain.close()

    def stored() -> dict[str, str]:
        engine = sa.create_engine(parse_database_url(url).url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT kid, pem FROM signing_keys")).all()
        engine.dispose()
        return {kid: pem for kid, pem in rows}

    first = await open_registry(url, pepper=PEPPER, key_password=b"first kek")
    try:
        assert await first.encrypt_signing_keys() == (2, 2)
        assert {k.kid for k in await first.all_signing_keys()} == kids  # readable at once
    finally:
        await first.close()
    assert all("ENCRYPTED" in pem for pem in stored().values())

    before = stored()
    second = await open_registry(url, pepper=PEPPER, key_password=b"second kek")
    try:
        with pytest.raises(ConfigurationError, match="--previous-key-env"):
            await second.encrypt_signing_keys(previous_password=b"not it")
        assert stored() == before
        assert await second.encrypt_signing_keys(previous_password=b"first kek") == (2, 2)
        assert {k.kid for k in await second.all_signing_keys()} == kids
    finally:
        await second.close()
    assert stored() != before
