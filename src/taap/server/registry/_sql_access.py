"""``SqlRegistry``'s revocations and resource servers (tables ``revocations``,
``resource_servers``, ``resource_server_secrets``).

Every write of revocations goes through :func:`append_revocations`, inside the caller's
transaction: a disable or an unsubscribe commits together with its cutoff, or not at all.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.errors import NotFoundError
from taap.server.registry._access import (
    NewResourceServer,
    after_cutoffs,
    unknown_resource_server,
)
from taap.server.registry._decoy import is_decoy
from taap.server.registry._rules import NewRevocation, to_datetime
from taap.server.registry._sql_core import SqlRegistryCore, utc
from taap.server.registry._sql_tables import (
    client_keys,
    client_secrets,
    clients,
    resource_server_secrets,
    resource_servers,
    revocations,
    subscriptions,
)
from taap.server.registry.port import ResourceServerRecord, ResourceServerStatus, RevocationEntry

__all__ = ["SqlAccess", "append_revocations"]

# pg_advisory_xact_lock key that serialises revocation writers (crc32 of a name).
_REVOCATIONS_LOCK = zlib.crc32(b"taap.registry.revocations")

_rv = revocations.c
_rs, _secret = resource_servers.c, resource_server_secrets.c


def _epoch(now: datetime) -> int:
    # Times are whole seconds: ``expires_at >= now`` is ``expires_at >= ceil(now)``, and an
    # integer keeps the comparison in the column's type on every driver.
    return math.ceil(now.timestamp())


def append_revocations(
    conn: Connection, client_id: str, rows: Sequence[NewRevocation], now: datetime
) -> list[NewRevocation]:
    """Prune expired rows, then append ``rows`` (a token already revoked for the client is
    skipped, a cutoff is moved past the client's newest one), inside the caller's
    transaction; ``rows`` as stored.

    On PostgreSQL a transaction-scoped advisory lock serialises revocation writers from here to
    their commit, so ``seq`` values are handed out in commit order: a reader that has seen
    ``seq`` n never later finds a row below n appear. (SQLite has one writer at a time.)
    Callers take their row locks before this and none after, so the lock cannot deadlock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REVOCATIONS_LOCK})
    conn.execute(sa.delete(revocations).where(_rv.expires_at < _epoch(now)))
    if any(row.not_before is not None for row in rows):
        # Read under the lock: two cutoffs of one client in one second are ordered here.
        newest = conn.execute(
            sa.select(sa.func.max(_rv.not_before)).where(_rv.client_id == client_id)
        ).scalar()
        rows = after_cutoffs(rows, int(newest or 0))
    jtis = [r.jti for r in rows if r.kind == "token"]
    done: set[str | None] = set()
    if jtis:
        done = set(
            conn.execute(
                sa.select(_rv.jti).where(
                    _rv.client_id == client_id, _rv.kind == "token", _rv.jti.in_(jtis)
                )
            ).scalars()
        )
    values: list[dict[str, Any]] = []
    for row in rows:
        if row.kind == "token" and row.jti in done:
            continue
        done.add(row.jti)
        values.append(
            {
                "kind": row.kind,
                "client_id": client_id,
                "jti": row.jti,
                "api_id": row.api_id,
                "not_before": row.not_before,
                "expires_at": row.expires_at,
                "created_at": now,
            }
        )
    if values:
        conn.execute(revocations.insert(), values)
    return list(rows)


def _rs_query(now: datetime) -> sa.Select[Any]:
    """Resource servers with their live secrets, the current secret first."""
    live = sa.and_(
        _secret.resource_server_id == _rs.id,
        sa.or_(_secret.expires_at.is_(None), _secret.expires_at > now),
    )
    return (
        sa.select(_rs.id, _rs.name, _rs.status, _rs.created_at, _rs.updated_at, _secret.digest)
        .select_from(resource_servers.outerjoin(resource_server_secrets, live))
        .order_by(_rs.created_at, _rs.id, _secret.expires_at.is_not(None), _secret.id.desc())
    )


def _rs_records(rows: Sequence[Any]) -> list[ResourceServerRecord]:
    grouped: dict[str, tuple[Any, list[bytes]]] = {}
    for row in rows:
        digests = grouped.setdefault(row.id, (row, []))[1]
        if row.digest is not None:
            digests.append(bytes.fromhex(row.digest))
    return [
        ResourceServerRecord(
            id=head.id,
            name=head.name,
            status=head.status,
            secret_digests=tuple(digests),
            created_at=utc(head.created_at),
            updated_at=utc(head.updated_at),
        )
        for head, digests in grouped.values()
    ]


class SqlAccess(SqlRegistryCore):
    """Revocations and resource servers."""

    # -- revocations ----------------------------------------------------------------------
    async def _read_revocations(self, seq: int, limit: int) -> Sequence[RevocationEntry]:
        now = _epoch(to_datetime(self._clock()))
        query = (
            sa.select(revocations)
            .where(_rv.seq > seq, _rv.expires_at >= now)
            .order_by(_rv.seq)
            .limit(limit)
        )
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return [
            RevocationEntry(
                seq=int(r.seq),
                kind=r.kind,
                client_id=r.client_id,
                jti=r.jti,
                api_id=r.api_id,
                not_before=None if r.not_before is None else int(r.not_before),
                expires_at=int(r.expires_at),
            )
            for r in rows
        ]

    async def _store_revocations(
        self, client_id: str, rows: Sequence[NewRevocation]
    ) -> list[NewRevocation]:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> list[NewRevocation]:
            known = conn.execute(sa.select(clients.c.id).where(clients.c.id == client_id)).first()
            if known is None or is_decoy(client_id):
                raise NotFoundError(f"unknown client {client_id!r}")
            return append_revocations(conn, client_id, rows, now)

        return await self._write(work)

    # -- resource servers ---------------------------------------------------------------
    async def list_resource_servers(self) -> Sequence[ResourceServerRecord]:
        """Every resource server, oldest first (never a secret, only digests).

        Raises:
            UnavailableError: the database cannot be reached.
        """
        query = _rs_query(to_datetime(self._clock()))
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return _rs_records(rows)

    async def _read_resource_server(self, rs_id: str) -> ResourceServerRecord | None:
        query = _rs_query(to_datetime(self._clock())).where(_rs.id == rs_id)
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        found = _rs_records(rows)
        return found[0] if found else None

    async def _insert_resource_server(self, new: NewResourceServer) -> ResourceServerRecord:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ResourceServerRecord:
            conn.execute(
                resource_servers.insert().values(
                    id=new.id, name=new.name, status="active", created_at=now, updated_at=now
                )
            )
            self._insert_rs_secret(conn, new.id, new.digest, now)
            return self._load_rs(conn, new.id, now)

        return await self._write(work)

    async def _store_resource_server_status(
        self, rs_id: str, status: ResourceServerStatus
    ) -> ResourceServerRecord:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ResourceServerRecord:
            self._touch_rs(conn, rs_id, now, status=status)
            return self._load_rs(conn, rs_id, now)

        return await self._write(work)

    async def _replace_resource_server_secret(
        self, rs_id: str, digest: bytes, *, grace: float
    ) -> None:
        now = to_datetime(self._clock())
        mine = _secret.resource_server_id == rs_id

        def work(conn: Connection) -> None:
            self._touch_rs(conn, rs_id, now)
            current = conn.execute(
                sa.select(_secret.id)
                .where(mine, _secret.expires_at.is_(None))
                .order_by(_secret.id.desc())
            ).scalars()
            keep = list(current)[:1] if grace > 0 else []
            # At most two live secrets: the new one and the one it replaces, for ``grace``.
            drop = sa.delete(resource_server_secrets).where(mine)
            if keep:
                drop = drop.where(_secret.id.not_in(keep))
                conn.execute(
                    sa.update(resource_server_secrets)
                    .where(_secret.id.in_(keep))
                    .values(expires_at=now + timedelta(seconds=grace))
                )
            conn.execute(drop)
            self._insert_rs_secret(conn, rs_id, digest, now)

        await self._write(work)

    async def _delete_client(self, client_id: str, revoke: NewRevocation) -> None:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> None:
            self._touch(conn, client_id, now)  # NotFoundError for an unknown id or the decoy
            append_revocations(conn, client_id, [revoke], now)
            # Owned rows first: SQLite cascades only with foreign keys switched on.
            for table in (client_secrets, client_keys, subscriptions):
                conn.execute(sa.delete(table).where(table.c.client_id == client_id))
            conn.execute(sa.delete(clients).where(clients.c.id == client_id))

        await self._write(work)

    async def _delete_resource_server(self, rs_id: str) -> None:
        def work(conn: Connection) -> None:
            # The secrets first: SQLite cascades only with foreign keys switched on.
            conn.execute(
                sa.delete(resource_server_secrets).where(_secret.resource_server_id == rs_id)
            )
            done = conn.execute(sa.delete(resource_servers).where(_rs.id == rs_id))
            if done.rowcount == 0:
                raise unknown_resource_server(rs_id)

        await self._write(work)

    # -- helpers (run inside a connection) ----------------------------------------------
    @staticmethod
    def _insert_rs_secret(conn: Connection, rs_id: str, digest: bytes, now: datetime) -> None:
        conn.execute(
            resource_server_secrets.insert().values(
                resource_server_id=rs_id, digest=digest.hex(), created_at=now, expires_at=None
            )
        )

    @staticmethod
    def _touch_rs(
        conn: Connection, rs_id: str, now: datetime, *, status: str | None = None
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = status
        done = conn.execute(sa.update(resource_servers).where(_rs.id == rs_id).values(**values))
        if done.rowcount == 0:
            raise unknown_resource_server(rs_id)

    @staticmethod
    def _load_rs(conn: Connection, rs_id: str, now: datetime) -> ResourceServerRecord:
        found = _rs_records(conn.execute(_rs_query(now).where(_rs.id == rs_id)).all())
        if not found:
            raise unknown_resource_server(rs_id)
        return found[0]
