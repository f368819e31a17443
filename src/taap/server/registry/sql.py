"""The client registry on SQLAlchemy Core (docs/registry.md): SQLite by default, PostgreSQL for
scale.

:func:`open_registry` is the one entry point: it parses the URL, builds the engine, runs the
migrations, makes sure a signing key exists, and returns a :class:`SqlRegistry`.

``SqlRegistry`` is assembled from one part per concern, each over its own tables: clients with
their secrets, keys and subscriptions, and the products (``_sql_clients``), signing keys
(``_sql_signing_keys``), revocations and resource servers (``_sql_access``); what they share,
the hot-path client statement included, is in ``_sql_core``. Statements run through
``_sql_runner``.

Hot path: :meth:`SqlRegistry.get_client` is one statement and nothing is cached but parsed key
objects, so a change made by the CLI or another node is seen by the next request
(docs/protocol.md#settings ``TAAP_REGISTRY_CACHE=0``). Every database failure becomes
:class:`~taap.errors.UnavailableError` (503), chained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.errors import ConfigurationError, TaapError
from taap.server.registry import migrations
from taap.server.registry._rules import (
    DEFAULT_CLIENT_ID_PREFIX,
    DEFAULT_KEY_PUBLISH_SECONDS,
    check_prefix,
    to_datetime,
)
from taap.server.registry._sql_access import SqlAccess
from taap.server.registry._sql_clients import SqlClients
from taap.server.registry._sql_runner import Runner, make_runner
from taap.server.registry._sql_signing_keys import SqlSigningKeys, ensure_signing_key
from taap.server.registry.database import DatabaseUrl, parse_database_url

__all__ = [
    "Runner",
    "SqlRegistry",
    "downgrade_database",
    "open_registry",
    "open_runner",
    "upgrade_database",
]


class SqlRegistry(SqlClients, SqlSigningKeys, SqlAccess):
    """:class:`~taap.server.registry.port.Registry` on a SQL database. Build it with
    :func:`open_registry`; ``clock`` returns POSIX seconds (tests move it)."""

    def __repr__(self) -> str:
        return f"SqlRegistry({self.database.masked!r})"

    @property
    def mode(self) -> str:
        """How statements run: ``inline``, ``thread`` or ``async`` (see docs/registry.md)."""
        return self._runner.mode

    @property
    def runner(self) -> Runner:
        """The registry's statement runner, for tables that live beside its own (the portal's,
        the usage counters). In a process that has the registry open, use this one rather
        than a second :func:`open_runner` on the same SQLite file: opening and closing
        another descriptor of the file drops every POSIX lock the process holds on it, the
        WAL's shared lock included, and another process (the CLI) may then checkpoint under
        the open connections, which stop seeing new rows. Released by :meth:`close`."""
        return self._runner

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``; never raises."""
        try:
            await self._runner.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())
        except TaapError:
            return False
        return True

    async def close(self) -> None:
        """Release the connection pool."""
        await self._runner.dispose()

    def bootstrap(self, conn: Connection) -> None:
        """Migrate to the newest schema and create a signing key if none is active
        (runs inside :func:`open_registry`'s locked transaction)."""
        _bootstrap(conn, now=to_datetime(self._clock()), key_password=self._key_password)


def _bootstrap(
    conn: Connection, *, now: datetime, key_password: bytes | None, revision: str = "head"
) -> None:
    migrations.upgrade(conn, revision)
    if migrations.current_revision(conn) != migrations.head_revision():
        return  # an explicit older target: its schema may not hold signing keys as we do
    ensure_signing_key(conn, now, key_password)


async def upgrade_database(
    database_url: str | DatabaseUrl,
    *,
    revision: str = "head",
    clock: Callable[[], float] = time.time,
    key_password: bytes | None = None,
) -> str | None:
    """Run the migrations up to ``revision`` and create a signing key if none is active
    (``taap db upgrade``; no pepper needed). Returns the revision reached.

    Raises:
        ConfigurationError: bad URL or missing driver.
        UnavailableError: the database cannot be reached.
    """
    database = _parsed(database_url)
    runner = make_runner(database)
    try:
        await runner.bootstrap(
            lambda conn: _bootstrap(
                conn, now=to_datetime(clock()), key_password=key_password, revision=revision
            )
        )
        return await runner.read(migrations.current_revision)
    finally:
        await runner.dispose()


async def downgrade_database(database_url: str | DatabaseUrl, revision: str) -> str | None:
    """Take the schema back to ``revision`` (``base``: drop every registry table).

    Raises:
        ConfigurationError: bad URL or missing driver.
        UnavailableError: the database cannot be reached.
    """
    runner = make_runner(_parsed(database_url))
    try:
        await runner.bootstrap(lambda conn: migrations.downgrade(conn, revision))
        return await runner.read(migrations.current_revision)
    finally:
        await runner.dispose()


def open_runner(database_url: str | DatabaseUrl) -> Runner:
    """A statement runner on the registry's database for tables that live beside the
    registry's own (the developer portal's), with the registry's I/O mode and error
    translation. Release it with ``dispose()``.

    Raises:
        ConfigurationError: bad URL or missing driver.
    """
    return make_runner(_parsed(database_url))


def _parsed(database_url: str | DatabaseUrl) -> DatabaseUrl:
    if isinstance(database_url, DatabaseUrl):
        return database_url
    return parse_database_url(database_url)


async def open_registry(
    database_url: str | DatabaseUrl,
    *,
    pepper: bytes,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
    client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX,
    key_publish_seconds: float = DEFAULT_KEY_PUBLISH_SECONDS,
    key_password: bytes | None = None,
    mode: str | None = None,
) -> SqlRegistry:
    """Connect, migrate to the newest schema, create a signing key if none; the registry.

    ``migrate=False`` only checks that the schema is current (for nodes that must not change
    it). ``mode`` overrides how statements run (``inline``/``thread``; default per backend).

    Raises:
        ConfigurationError: bad URL, missing driver, or (``migrate=False``) an old schema.
        UnavailableError: the database cannot be reached.
    """
    database = _parsed(database_url)
    if not pepper:
        raise ConfigurationError("the registry needs a non-empty pepper")
    check_prefix(client_id_prefix)  # before any engine exists
    runner = make_runner(database, mode=mode)
    registry = SqlRegistry(
        runner,
        pepper=pepper,
        database=database,
        clock=clock,
        client_id_prefix=client_id_prefix,
        key_publish_seconds=key_publish_seconds,
        key_password=key_password,
    )
    try:
        if migrate:
            await runner.bootstrap(registry.bootstrap)
        else:
            current = await runner.read(migrations.current_revision)
            if current != migrations.head_revision():
                raise ConfigurationError(
                    f"the registry schema is at {current or 'nothing'}, this taap needs "
                    f"{migrations.head_revision()}: run `taap db upgrade`"
                )
    except BaseException:
        await runner.dispose()
        raise
    return registry
