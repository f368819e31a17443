"""Alembic migrations of the registry schema, run programmatically (no ``alembic.ini``).

:func:`upgrade` and :func:`downgrade` take an open SQLAlchemy connection inside a transaction;
``taap db upgrade`` and the first start of the token server call them through
``taap.server.registry.sql``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from taap.server.registry._sql_tables import VERSION_TABLE

__all__ = ["HEAD", "current_revision", "downgrade", "head_revision", "upgrade"]

HEAD = "head"
_HERE = Path(__file__).resolve().parent


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    # env.py takes this connection instead of building an engine from a URL.
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = HEAD) -> None:
    """Bring the schema on ``connection`` to ``revision`` (default: the newest)."""
    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every registry table)."""
    command.downgrade(_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    revision: str | None = context.get_current_revision()
    return revision


def head_revision() -> str:
    """The newest revision shipped with this version of ``taap``."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    head: str | None = ScriptDirectory.from_config(config).get_current_head()
    if head is None:  # pragma: no cover - the package always ships at least one revision
        raise RuntimeError("no migrations found")
    return head
