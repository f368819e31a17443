"""How registry statements reach the database: engines, I/O mode, and error translation.

Statements are written once as plain functions of a synchronous ``Connection``; a runner
executes them:

- ``inline``: a sync engine, called on the event loop (SQLite: a local file read of a few
  tens of microseconds costs less than any hand-off);
- ``thread``: a sync engine in a worker thread (PostgreSQL: the loop keeps signing tokens
  while a query waits on the network);
- ``async``: SQLAlchemy's asyncio engine (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``,
  ``postgresql+psycopg_async://``; needs greenlet and the driver), via ``run_sync``.

The defaults come from the measurements in docs/registry.md. Every database failure leaves
here as :class:`~taap.errors.UnavailableError` chained ``from`` the original; its operator
detail names the driver's error class and first line, never the SQL or its parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from taap.errors import ConfigurationError, TaapError, UnavailableError
from taap.server.registry.database import DatabaseUrl, mask_url

__all__ = ["MODES", "Runner", "make_runner", "unavailable"]

T = TypeVar("T")
Work = Callable[[Connection], T]

MODES = ("inline", "thread", "async")
_DEFAULT_MODE = {"sqlite": "inline", "postgresql": "thread"}
_CONNECT_TIMEOUT = 5
_POOL_SIZE = 10
_MAX_OVERFLOW = 10
# pg_advisory_xact_lock key that serialises first starts of several nodes (crc32 of a name).
_BOOTSTRAP_LOCK = zlib.crc32(b"taap.registry.bootstrap")


def unavailable(exc: BaseException) -> UnavailableError:
    """The 503 for a database failure; the detail is safe for logs."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    detail = mask_url(f"{type(orig).__name__}: {first}")[:300]
    return UnavailableError("the client registry is unavailable", log_detail=detail)


class Runner(Protocol):
    """Runs ``work(connection)``: reads without, writes within, a transaction."""

    mode: str

    async def read(self, work: Work[T], *, retry: bool = False) -> T: ...

    async def fetch(self, statement: sa.CompoundSelect[Any], params: dict[str, Any]) -> list[Any]:
        """Rows of one hot-path SELECT (raw driver tuples; see :class:`_Prepared`)."""
        ...

    async def write(self, work: Work[T]) -> T: ...

    async def bootstrap(self, work: Callable[[Connection], None]) -> None: ...

    async def dispose(self) -> None: ...


@contextlib.contextmanager
def _translated(*, writing: bool) -> Iterator[None]:
    try:
        yield
    except TaapError:
        raise
    except sa_exc.IntegrityError as exc:
        if writing:
            raise  # a concurrent writer won: the registry says "already exists"
        raise unavailable(exc) from exc
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise unavailable(exc) from exc


def _invalidated(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


@contextlib.contextmanager
def _file_lock(database: DatabaseUrl) -> Iterator[None]:
    # SQLite has no advisory locks; flock on the database file (independent of SQLite's own
    # fcntl locks on Linux) serialises two processes starting on a new file.
    path = database.sqlite_path
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_statement(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOTSTRAP_LOCK})


class _Prepared:
    """A statement compiled once for one dialect, run on the raw DBAPI cursor.

    The hot path (``get_client``, every token request) skips SQLAlchemy's per-execution work,
    measured at ~10x the cost of the SQLite query itself; the SQL text, bind order and bind
    conversions are still SQLAlchemy's. Result values come back as the driver gives them
    (SQLite: ISO strings for times, 0/1 for booleans); the caller normalises them.
    """

    def __init__(self, statement: sa.CompoundSelect[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._order: list[str] | None = (
            list(compiled.positiontup) if compiled.positiontup is not None else None
        )
        self._convert: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.bind_processor(dialect)
            if processor is not None:
                self._convert[name] = processor

    def args(self, params: dict[str, Any]) -> Any:
        values = {k: (self._convert[k](v) if k in self._convert else v) for k, v in params.items()}
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)


class _SyncRunner:
    def __init__(self, engine: Engine, reader: Engine, database: DatabaseUrl, mode: str) -> None:
        self.mode = mode
        self._engine = engine
        self._reader = reader
        self._database = database
        self._prepared: dict[int, _Prepared] = {}
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def _read(self, work: Work[T], retry: bool) -> T:
        with _translated(writing=False):
            try:
                with self._reader.connect() as conn:
                    return work(conn)
            except sa_exc.DBAPIError as exc:
                # A pooled connection died (database restarted): one fresh attempt for reads.
                if not (retry and _invalidated(exc)):
                    raise
            with self._reader.connect() as conn:
                return work(conn)

    def _fetch(self, statement: sa.CompoundSelect[Any], params: dict[str, Any]) -> list[Any]:
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            prepared = self._prepared[id(statement)] = _Prepared(statement, self._engine.dialect)
        args = prepared.args(params)
        # Every pooled connection may be dead after a database restart: drop each one that
        # fails as a disconnect and try the next, up to the pool's size plus a fresh one.
        attempts = _POOL_SIZE + _MAX_OVERFLOW + 1
        for attempt in range(1, attempts + 1):
            try:
                conn = self._reader.raw_connection()
            except (self._dbapi_error, sa_exc.SQLAlchemyError, OSError) as exc:
                # The pool raises the driver's own error when a new connection fails.
                raise unavailable(exc) from exc
            try:
                cursor = conn.cursor()
                cursor.execute(prepared.sql, args)
                rows: list[Any] = list(cursor.fetchall())
                cursor.close()
                return rows
            except self._dbapi_error as exc:
                dead = self._engine.dialect.is_disconnect(
                    exc,  # type: ignore[arg-type]  # the DBAPI's own Error class
                    conn.dbapi_connection,
                    None,
                )
                if dead:
                    conn.invalidate(exc)
                if not dead or attempt == attempts:
                    raise unavailable(exc) from exc
            finally:
                conn.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, work: Work[T]) -> T:
        with _translated(writing=True), self._engine.begin() as conn:
            return work(conn)

    def _bootstrap(self, work: Callable[[Connection], None]) -> None:
        with _translated(writing=True), _file_lock(self._database), self._engine.begin() as conn:
            _lock_statement(conn)
            work(conn)

    async def read(self, work: Work[T], *, retry: bool = False) -> T:
        if self.mode == "inline":
            return self._read(work, retry)
        return await asyncio.to_thread(self._read, work, retry)

    async def fetch(self, statement: sa.CompoundSelect[Any], params: dict[str, Any]) -> list[Any]:
        if self.mode == "inline":
            return self._fetch(statement, params)
        return await asyncio.to_thread(self._fetch, statement, params)

    async def write(self, work: Work[T]) -> T:
        if self.mode == "inline":
            return self._write(work)
        return await asyncio.to_thread(self._write, work)

    async def bootstrap(self, work: Callable[[Connection], None]) -> None:
        await asyncio.to_thread(self._bootstrap, work)

    async def dispose(self) -> None:
        self._engine.dispose()
        if self._reader is not self._engine:
            self._reader.dispose()


class _AsyncRunner:
    mode = "async"

    def __init__(self, engine: Any, database: DatabaseUrl) -> None:
        self._engine = engine  # sqlalchemy.ext.asyncio.AsyncEngine (optional import)
        self._database = database

    async def read(self, work: Work[T], *, retry: bool = False) -> T:
        with _translated(writing=False):
            try:
                async with self._engine.connect() as conn:
                    result: T = await conn.run_sync(work)
                    return result
            except sa_exc.DBAPIError as exc:
                if not (retry and _invalidated(exc)):
                    raise
            async with self._engine.connect() as conn:
                result = await conn.run_sync(work)
                return result

    async def fetch(self, statement: sa.CompoundSelect[Any], params: dict[str, Any]) -> list[Any]:
        rows = await self.read(
            lambda conn: [tuple(r) for r in conn.execute(statement, params)], retry=True
        )
        return rows

    async def write(self, work: Work[T]) -> T:
        with _translated(writing=True):
            async with self._engine.begin() as conn:
                result: T = await conn.run_sync(work)
                return result

    async def bootstrap(self, work: Callable[[Connection], None]) -> None:
        def locked(conn: Connection) -> None:
            _lock_statement(conn)
            work(conn)

        with _translated(writing=True), _file_lock(self._database):
            async with self._engine.begin() as conn:
                await conn.run_sync(locked)

    async def dispose(self) -> None:
        await self._engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # foreign_keys: cascades; WAL: the server reads while the CLI writes; busy_timeout: a
    # writer waits for another instead of failing at once.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _prepare_sqlite_file(database: DatabaseUrl) -> None:
    path = database.sqlite_path
    if path is None:
        return
    if not path.parent.is_dir():
        raise ConfigurationError(f"the directory of the SQLite database {path} does not exist")
    # The file holds signing keys: private to its owner from the first byte. Only a file that
    # does not exist yet is opened here: closing any descriptor of a file drops every POSIX
    # lock this process holds on it, so touching an open registry's file would let another
    # process checkpoint under this one's connections.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _engine_args(database: DatabaseUrl) -> dict[str, Any]:
    if database.backend == "sqlite":
        args: dict[str, Any] = {"connect_args": {"timeout": _CONNECT_TIMEOUT}}
        if database.driver == "pysqlite":
            args["connect_args"]["check_same_thread"] = False
        if database.sqlite_path is None:
            args["poolclass"] = StaticPool  # one in-memory database shared by all users
        return args
    timeout_arg = "timeout" if database.driver == "asyncpg" else "connect_timeout"
    return {
        "connect_args": {timeout_arg: _CONNECT_TIMEOUT},
        "pool_size": _POOL_SIZE,
        "max_overflow": _MAX_OVERFLOW,
        "pool_timeout": _CONNECT_TIMEOUT,
    }


def make_runner(database: DatabaseUrl, *, mode: str | None = None) -> Runner:
    """An engine for ``database`` wrapped in the runner for ``mode`` (default: per backend).

    Raises:
        ConfigurationError: unknown mode, or the driver (or greenlet) is not installed.
    """
    chosen = "async" if database.is_async else (mode or _DEFAULT_MODE[database.backend])
    if chosen not in MODES or (chosen == "async") != database.is_async:
        raise ConfigurationError(
            f"registry mode {chosen!r} does not fit driver {database.driver!r}: "
            "use inline or thread with a sync driver; async drivers run async"
        )
    if database.backend == "sqlite":
        _prepare_sqlite_file(database)
    args = _engine_args(database)
    try:
        if chosen == "async":
            from sqlalchemy.ext.asyncio import create_async_engine

            async_engine = create_async_engine(database.url, **args)
            if database.backend == "sqlite":
                event.listen(async_engine.sync_engine, "connect", _sqlite_pragmas)
            return _AsyncRunner(async_engine, database)
        engine = sa.create_engine(database.url, **args)
        reader = engine
        if database.backend == "postgresql":
            # Reads are single statements (or listings): a pool of autocommit connections
            # saves the BEGIN and ROLLBACK round trips, so get_client is one round trip.
            reader = sa.create_engine(database.url, isolation_level="AUTOCOMMIT", **args)
    except (ImportError, sa_exc.NoSuchModuleError, sa_exc.InvalidRequestError) as exc:
        raise ConfigurationError(
            f"the database driver for {database.masked!r} is not installed "
            f"({type(exc).__name__}); async drivers need `pip install greenlet {database.driver}`"
        ) from None
    if database.backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return _SyncRunner(engine, reader, database, chosen)
