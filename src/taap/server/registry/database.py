"""Database URLs as users write them (docs/registry.md, docs/server.md) → the SQLAlchemy URL with
the driver chosen.

Accepted::

    sqlite:///./taap.db              relative file (to the working directory); the default
    sqlite:////var/lib/taap/taap.db  absolute file
    sqlite:///:memory:  sqlite://    in-memory (tests; needs TAAP_PEPPER)
    postgresql://user:pass@host:5432/db    also postgres://… and postgresql+psycopg://…
    postgresql+asyncpg://…  sqlite+aiosqlite:///…   async drivers, when installed

A plain URL gets the driver ``taap`` ships with (:data:`DEFAULT_DRIVERS`). Passwords never
appear in a repr, a log line or an error message: :func:`mask_url` hides them, even in strings
that do not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from taap.errors import ConfigurationError

__all__ = [
    "ASYNC_DRIVERS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_DRIVERS",
    "Backend",
    "DatabaseUrl",
    "mask_url",
    "parse_database_url",
]

Backend = Literal["sqlite", "postgresql"]

#: The default (docs/protocol.md#settings): a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///./taap.db"

#: Driver used for a plain ``sqlite://`` / ``postgresql://`` URL (measured: docs/registry.md).
DEFAULT_DRIVERS: dict[Backend, str] = {"sqlite": "pysqlite", "postgresql": "psycopg"}

_SYNC_DRIVERS: dict[Backend, frozenset[str]] = {
    "sqlite": frozenset({"pysqlite"}),
    "postgresql": frozenset({"psycopg", "psycopg2"}),
}
#: Drivers that need SQLAlchemy's asyncio extension (greenlet) and are used through it.
ASYNC_DRIVERS: dict[Backend, frozenset[str]] = {
    "sqlite": frozenset({"aiosqlite"}),
    "postgresql": frozenset({"asyncpg", "psycopg_async"}),
}
_BACKEND_ALIASES: dict[str, Backend] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pgsql": "postgresql",
}
# user:password@ in anything that looks like a URL, parseable or not.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<pw>[^@\s]*)@")


def mask_url(text: str) -> str:
    """``text`` with any URL password replaced by ``***`` (safe to log or show)."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}:***@", text)


@dataclass(frozen=True, slots=True, repr=False)
class DatabaseUrl:
    """A parsed database URL: backend, driver, and where a SQLite file lives."""

    url: URL
    backend: Backend
    driver: str
    is_async: bool
    #: The SQLite database file, or ``None`` (in-memory SQLite, PostgreSQL).
    sqlite_path: Path | None

    @property
    def masked(self) -> str:
        """The URL with the password hidden."""
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.masked!r})"

    def __str__(self) -> str:
        return self.masked


def parse_database_url(text: str) -> DatabaseUrl:
    """Parse a database URL in the forms users write; the driver is chosen when not named.

    Raises:
        ConfigurationError: unparseable URL, unsupported database or driver, or a SQLite URL
            with a host. The message shows the URL with its password masked.
    """
    shown = mask_url(text.strip())
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        # ``from None``: the parser's own message may echo the raw string, password included.
        # The text is not echoed: unparsed, its password cannot be told apart to be masked.
        raise ConfigurationError(
            "cannot parse the database URL: expected sqlite:///path/taap.db or "
            "postgresql://user:password@host/dbname"
        ) from None
    scheme, _, named_driver = url.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(scheme.lower())
    if backend is None:
        raise ConfigurationError(
            f"unsupported database {scheme!r} in {shown!r}: use sqlite or postgresql"
        )
    driver = named_driver.lower() or DEFAULT_DRIVERS[backend]
    is_async = driver in ASYNC_DRIVERS[backend]
    if not is_async and driver not in _SYNC_DRIVERS[backend]:
        known = sorted(_SYNC_DRIVERS[backend] | ASYNC_DRIVERS[backend])
        raise ConfigurationError(
            f"unsupported {backend} driver {driver!r} in {shown!r}: use one of {known}"
        )
    url = url.set(drivername=f"{backend}+{driver}")
    sqlite_path: Path | None = None
    if backend == "sqlite":
        if url.host or url.username or url.password:
            raise ConfigurationError(
                f"a SQLite URL names a file, not a host: {shown!r} "
                "(write sqlite:///relative/path.db or sqlite:////absolute/path.db)"
            )
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            sqlite_path = Path(url.database).expanduser()
    elif not url.database:
        raise ConfigurationError(f"the PostgreSQL URL {shown!r} names no database")
    return DatabaseUrl(
        url=url, backend=backend, driver=driver, is_async=is_async, sqlite_path=sqlite_path
    )
