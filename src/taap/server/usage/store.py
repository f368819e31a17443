"""Reading and writing the usage counters (:mod:`taap.server.usage.tables`) through the
registry's statement runner: SQLite and PostgreSQL, an upsert that adds to the row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from taap.server.registry.sql import Runner
from taap.server.usage.tables import usage_counts

__all__ = ["Count", "SqlUsage"]


@dataclass(frozen=True, slots=True)
class Count:
    """``count`` events of ``kind`` (with ``error_code``, "" for none) in ``minute``."""

    client_id: str
    kind: str
    error_code: str
    minute: int
    count: int


def _upsert(conn: Connection, rows: Sequence[Count]) -> None:
    dialect = conn.dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(usage_counts)
    statement = statement.on_conflict_do_update(
        index_elements=["client_id", "kind", "error_code", "minute"],
        set_={"count": usage_counts.c.count + statement.excluded.count},
    )
    conn.execute(
        statement,
        [
            {
                "client_id": r.client_id,
                "kind": r.kind,
                "error_code": r.error_code,
                "minute": r.minute,
                "count": r.count,
            }
            for r in rows
        ],
    )


class SqlUsage:
    """The counters of every node, in the registry's database."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def add(self, rows: Iterable[Count]) -> None:
        """Add each row's count to the stored one (a new row when there is none).

        Raises:
            UnavailableError: the database failed.
        """
        batch = list(rows)
        if not batch:
            return

        def work(conn: Connection) -> None:
            # Sorted, so two nodes upserting the same rows lock them in the same order.
            _upsert(
                conn, sorted(batch, key=lambda r: (r.client_id, r.kind, r.error_code, r.minute))
            )

        await self._runner.write(work)

    async def counts(self, client_id: str, since_minute: int) -> list[Count]:
        """Every row of ``client_id`` from ``since_minute`` on."""

        def work(conn: Connection) -> list[Count]:
            table = usage_counts
            rows = conn.execute(
                sa.select(table.c.kind, table.c.error_code, table.c.minute, table.c.count).where(
                    table.c.client_id == client_id, table.c.minute >= since_minute
                )
            )
            # Row.count is the tuple method: unpack by position.
            return [
                Count(client_id, kind, code, int(minute), int(count))
                for kind, code, minute, count in rows
            ]

        return await self._runner.read(work)

    async def prune(self, before_minute: int) -> None:
        """Forget the rows older than ``before_minute``."""

        def work(conn: Connection) -> None:
            conn.execute(sa.delete(usage_counts).where(usage_counts.c.minute < before_minute))

        await self._runner.write(work)

    async def close(self) -> None:
        """Release the runner's connections (it stays usable: a later statement reconnects)."""
        await self._runner.dispose()
