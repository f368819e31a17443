"""Fixtures for the registry tests: one contract, three back-ends.

``registry`` is parametrised over MemoryRegistry, SqlRegistry on a real SQLite file and
SqlRegistry on the real PostgreSQL. Each SQL test gets a fresh database copied from a template
migrated once per run (SQLite: a file copy; PostgreSQL: ``CREATE DATABASE … TEMPLATE``), so the
expensive part (migrations + RSA signing-key generation) is paid once. Every PostgreSQL database
made here is dropped at the end of the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from registry_kit import PEPPER, FakeClock, PgDatabases

from taap.core import PrivateKey
from taap.server.registry.memory import MemoryRegistry
from taap.server.registry.port import Registry
from taap.server.registry.sql import open_registry


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_databases(postgres_url: str) -> Iterator[PgDatabases]:
    databases = PgDatabases(postgres_url)
    yield databases
    databases.drop_all()


def _bootstrap(url: str) -> None:
    # Session fixtures may be first asked for from inside a running test loop: migrate the
    # template on a loop of its own, in another thread.
    async def run() -> None:
        registry = await open_registry(url, pepper=PEPPER)
        await registry.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def pg_template(pg_databases: PgDatabases) -> str:
    name = pg_databases.create()
    _bootstrap(pg_databases.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "taap.db"
    _bootstrap(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file with one signing key."""
    target = tmp_path / "taap.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def pg_url(pg_databases: PgDatabases, pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database with one signing key."""
    name = pg_databases.create(template=pg_template)
    yield pg_databases.url(name)
    pg_databases.drop(name)


@pytest.fixture(scope="session")
def pg_contract(pg_databases: PgDatabases, pg_template: str) -> tuple[str, str]:
    """One migrated database shared by the contract tests, and its seeded signing key's kid."""
    name = pg_databases.create(template=pg_template)
    with psycopg.connect(pg_databases.libpq(name)) as conn:
        row = conn.execute("SELECT kid FROM signing_keys").fetchone()
    assert row is not None
    return name, str(row[0])


@pytest.fixture
def pg_contract_url(pg_databases: PgDatabases, pg_contract: tuple[str, str]) -> str:
    """The shared contract database, back to its freshly migrated state.

    Cloning a database per test costs ~0.5 s; emptying the tables the tests write costs a few
    milliseconds (test_registry_sql proves the reset leaves nothing behind).
    """
    name, kid = pg_contract
    pg_databases.reset(name, kid)
    return pg_databases.url(name)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def registry(
    request: pytest.FixtureRequest, clock: FakeClock, rsa_key: PrivateKey
) -> AsyncIterator[Registry]:
    """The same contract, on every back-end."""
    backend: Registry
    if request.param == "memory":
        backend = MemoryRegistry(PEPPER, clock=clock, signing_key=rsa_key)
    elif request.param == "sqlite":
        backend = await open_registry(
            request.getfixturevalue("sqlite_url"), pepper=PEPPER, clock=clock
        )
    else:
        backend = await open_registry(
            request.getfixturevalue("pg_contract_url"), pepper=PEPPER, clock=clock
        )
    yield backend
    await backend.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database URL on each SQL back-end."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
