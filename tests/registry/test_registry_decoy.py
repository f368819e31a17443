"""The timing decoy (migration 0002, SECURITY.md A2): stored on every SQL back-end, read by the
hot lookup for an unknown id, and invisible everywhere else (listings, show, admin calls)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from registry_kit import PEPPER, FakeClock

from taap.cli.main import cli
from taap.core import PrivateKey
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry import migrations
from taap.server.registry._decoy import DECOY_API, DECOY_CLIENT_ID
from taap.server.registry._rules import is_client_id, to_datetime
from taap.server.registry._sql_core import CLIENT_SQL
from taap.server.registry.database import parse_database_url
from taap.server.registry.memory import MemoryRegistry
from taap.server.registry.port import Registry
from taap.server.registry.sql import SqlRegistry, open_registry


def _migration() -> ModuleType:
    path = Path(migrations.__file__).parent / "versions" / "r0002_timing_decoy.py"
    spec = importlib.util.spec_from_file_location("taap_r0002", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _decoy_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(parse_database_url(url).url)
    try:
        with engine.connect() as conn:
            return {
                table: [
                    tuple(r)
                    for r in conn.execute(
                        sa.text(f"SELECT * FROM {table} WHERE {column} = :d"),
                        {"d": DECOY_CLIENT_ID},
                    )
                ]
                for table, column in (
                    ("clients", "id"),
                    ("client_secrets", "client_id"),
                    ("client_keys", "client_id"),
                    ("subscriptions", "client_id"),
                )
            }
    finally:
        engine.dispose()


def test_migration_and_code_name_the_same_decoy() -> None:
    module = _migration()
    assert (module.DECOY_CLIENT_ID, module.DECOY_API) == (DECOY_CLIENT_ID, DECOY_API)


def test_the_decoy_id_is_outside_the_client_id_space() -> None:
    assert not is_client_id(DECOY_CLIENT_ID)
    # Basic credentials split at the first ':': the id cannot even be sent.
    assert ":" in DECOY_CLIENT_ID


async def test_decoy_is_stored_with_the_shape_of_a_typical_client(sql_url: str) -> None:
    rows = _decoy_rows(sql_url)
    assert [(r[0], r[2]) for r in rows["clients"]] == [(DECOY_CLIENT_ID, "disabled")]
    assert len(rows["client_secrets"]) == 1
    assert len(rows["client_keys"]) == 1
    assert [r[1] for r in rows["subscriptions"]] == [DECOY_API]


async def test_each_database_gets_its_own_random_decoy_digest(tmp_path: Path) -> None:
    digests = []
    for name in ("a.db", "b.db"):
        url = f"sqlite:///{tmp_path}/{name}"
        registry = await open_registry(url, pepper=PEPPER)
        await registry.close()
        digests.append(_decoy_rows(url)["client_secrets"][0][2])
    assert digests[0] != digests[1]
    assert all(len(d) == 64 for d in digests)


async def test_unknown_id_reads_the_decoy_rows_as_a_known_id_reads_its_own(
    sql_url: str, rsa_key: PrivateKey
) -> None:
    registry = await open_registry(sql_url, pepper=PEPPER)
    assert isinstance(registry, SqlRegistry)
    try:
        record, _ = await registry.create_client(
            name="real", keys=[rsa_key.public], apis=["connectivity"]
        )
        now = FakeClock()()
        params = {"now": to_datetime(now)}
        runner = registry._runner
        known = await runner.fetch(CLIENT_SQL, {"cid": record.client_id, **params})
        unknown = await runner.fetch(CLIENT_SQL, {"cid": "taap-nobody-by-this-id", **params})
        # Same statement, same number and kinds of rows: the same work for both answers (the
        # cutoff member "r" is an aggregate: one row, NULL for both here).
        kinds = ["a", "c", "k", "r", "s"]
        assert sorted(r[0] for r in known) == sorted(r[0] for r in unknown) == kinds
        head_known = next(r for r in known if r[0] == "c")
        head_unknown = next(r for r in unknown if r[0] == "c")
        assert bool(head_known[5]) is True
        assert bool(head_unknown[5]) is False
        assert head_unknown[2] == "disabled"
        assert await registry.get_client("taap-nobody-by-this-id") is None
        assert await registry.get_client(record.client_id) == record
    finally:
        await registry.close()


async def test_memory_registry_builds_the_decoy_record_for_an_unknown_id(
    clock: FakeClock, rsa_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = MemoryRegistry(PEPPER, clock=clock, signing_key=rsa_key)
    built: list[str] = []
    original = registry._record

    def spy(client: Any) -> Any:
        built.append(client.client_id)
        return original(client)

    monkeypatch.setattr(registry, "_record", spy)
    assert await registry.get_client("taap-nobody-by-this-id") is None
    assert built == [DECOY_CLIENT_ID]


async def test_decoy_is_invisible_to_every_registry_call(
    registry: Registry, rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    assert await registry.get_client(DECOY_CLIENT_ID) is None
    assert await registry.list_clients() == []
    record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=["location"])
    assert [c.client_id for c in await registry.list_clients()] == [record.client_id]
    calls = [
        lambda: registry.set_status(DECOY_CLIENT_ID, "active"),
        lambda: registry.set_status(DECOY_CLIENT_ID, "disabled"),
        lambda: registry.rotate_secret(DECOY_CLIENT_ID),
        lambda: registry.rotate_secret(DECOY_CLIENT_ID, "a-chosen-secret-of-enough-length-123"),
        lambda: registry.add_key(DECOY_CLIENT_ID, other_key.public),
        lambda: registry.remove_key(DECOY_CLIENT_ID, rsa_key.thumbprint),
        lambda: registry.subscribe(DECOY_CLIENT_ID, "location"),
        lambda: registry.unsubscribe(DECOY_CLIENT_ID, DECOY_API),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            await call()
    with pytest.raises(ConfigurationError):
        await registry.create_client(
            name="x", keys=[rsa_key.public], apis=[], client_id=DECOY_CLIENT_ID
        )
    # Nothing above reached the stored decoy: still disabled, still invisible.
    assert await registry.get_client(DECOY_CLIENT_ID) is None
    assert [c.client_id for c in await registry.list_clients()] == [record.client_id]


async def test_admin_calls_leave_the_stored_decoy_unchanged(
    sql_url: str, rsa_key: PrivateKey
) -> None:
    before = _decoy_rows(sql_url)
    registry = await open_registry(sql_url, pepper=PEPPER)
    try:
        for call in (
            lambda: registry.set_status(DECOY_CLIENT_ID, "active"),
            lambda: registry.rotate_secret(DECOY_CLIENT_ID, grace=60),
            lambda: registry.add_key(DECOY_CLIENT_ID, rsa_key.public),
        ):
            with pytest.raises(NotFoundError):
                await call()
    finally:
        await registry.close()
    assert _decoy_rows(sql_url) == before


def test_cli_list_and_show_do_not_see_the_decoy(sql_url: str) -> None:
    env = {"TAAP_DATABASE_URL": sql_url, "TAAP_PEPPER": PEPPER.decode()}
    runner = CliRunner()
    listed = runner.invoke(cli, ["clients", "list", "--json"], env=env, catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == []
    shown = runner.invoke(cli, ["clients", "show", DECOY_CLIENT_ID], env=env)
    assert shown.exit_code == 1
    assert "not_found" in shown.output
    enabled = runner.invoke(cli, ["clients", "enable", DECOY_CLIENT_ID], env=env)
    assert enabled.exit_code == 1
    assert _decoy_rows(sql_url)["clients"][0][2] == "disabled"
