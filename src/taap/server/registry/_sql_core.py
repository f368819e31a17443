"""What every part of ``SqlRegistry`` shares: its state, the one-statement client read, and the
helpers its statements call inside a connection.

The client read is one statement (a ``UNION ALL`` of the client row, its live secrets, keys,
subscriptions and newest token cutoff). An unknown id reads the timing decoy's rows instead and
its record is built before the answer ``None`` (SECURITY.md A2;
:mod:`taap.server.registry._decoy`), so both cost the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from taap.core.keys import PrivateKey, PublicKey, load_public_key
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._access import AccessRules
from taap.server.registry._decoy import DECOY_CLIENT_ID, is_decoy
from taap.server.registry._rules import (
    DEFAULT_CLIENT_ID_PREFIX,
    DEFAULT_KEY_PUBLISH_SECONDS,
    cutoff_is_live,
)
from taap.server.registry._sql_runner import Runner
from taap.server.registry._sql_tables import (
    api_products,
    client_keys,
    client_secrets,
    clients,
    revocations,
    subscriptions,
)
from taap.server.registry.database import DatabaseUrl
from taap.server.registry.port import ClientRecord

__all__ = ["ALL_CLIENTS_SQL", "CLIENT_SQL", "TIMESTAMP", "SqlRegistryCore", "utc"]

T = TypeVar("T")

TIMESTAMP = sa.DateTime(timezone=True)
_MAX_PARSED_KEYS = 10_000
# After ``kind``: head row (c) name, status, times, found; secret (s) digest, time, weak, id;
# key (k) thumbprint, PEM, time, id; subscription (a) API id, time; newest cutoff (r) its
# not_before. Unused columns are NULL.
_MEMBER_COLUMNS = ("a", "b", "t1", "t2", "f", "n")


def utc(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime.

    SQLite hands back naive datetimes, or ISO strings on the raw hot path (everything written
    here is UTC); PostgreSQL aware ones in the session's zone: all become UTC.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _null(type_: Any) -> sa.Cast[Any]:
    return sa.cast(sa.null(), type_)


def _client_statement(*, every: bool = False) -> sa.CompoundSelect[Any]:
    """The client row, its live secrets, keys, subscriptions and newest cutoff: one round trip.

    An unknown id reads the timing decoy's rows instead (SECURITY.md A2: the same index
    lookups, the same number of rows, the same record to build); the head row's ``f`` says
    whether the id asked for was found. ``every``: all clients at once (listings), each row
    ending in its client id. The cutoff member is an aggregate: exactly one row per client,
    NULL when it has none.
    """
    cid = sa.bindparam("cid", type_=sa.String)
    now = sa.bindparam("now", type_=TIMESTAMP)
    wanted = clients.alias("wanted")
    # The asked id when it exists, else the decoy's: a constant subquery, evaluated once.
    target = sa.func.coalesce(
        sa.select(wanted.c.id).where(wanted.c.id == cid).scalar_subquery(),
        sa.literal_column(f"'{DECOY_CLIENT_ID}'", sa.String),
    )

    def scoped(select: sa.Select[Any], owner: sa.ColumnElement[str]) -> sa.Select[Any]:
        if every:
            return select.add_columns(owner.label("owner"))
        return select.where(owner == target)

    def member(kind: str, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        # Every member has the same seven columns; the first member's labels name them.
        labelled = (
            column.label(name) for column, name in zip(columns, _MEMBER_COLUMNS, strict=True)
        )
        return sa.select(sa.literal_column(f"'{kind}'").label("kind"), *labelled)

    c, s, k, a, r = clients.c, client_secrets.c, client_keys.c, subscriptions.c, revocations.c
    text, time_, flag, number = (_null(t) for t in (sa.Text, TIMESTAMP, sa.Boolean, sa.Integer))
    found = flag if every else (c.id == cid)
    head = scoped(member("c", c.name, c.status, c.created_at, c.updated_at, found, number), c.id)
    live = member("s", s.digest, text, s.created_at, time_, s.weak, s.id)
    live = scoped(live.where(sa.or_(s.expires_at.is_(None), s.expires_at > now)), s.client_id)
    keys = scoped(member("k", k.thumbprint, k.pem, k.created_at, time_, flag, k.id), k.client_id)
    apis = scoped(member("a", a.api_id, text, a.created_at, time_, flag, number), a.client_id)
    newest = member("r", text, text, time_, time_, flag, sa.func.max(r.not_before))
    newest = scoped(newest.where(r.not_before.is_not(None)), r.client_id)
    if every:
        newest = newest.group_by(r.client_id)
    return sa.union_all(head, live, keys, apis, newest)


#: One client by ``cid`` (the decoy's rows for an unknown id), secrets live at ``now``.
CLIENT_SQL = _client_statement()
#: Every client's rows, each led by its id (listings).
ALL_CLIENTS_SQL = _client_statement(every=True)


class SqlRegistryCore(AccessRules):
    """State and in-connection helpers of ``SqlRegistry``; each concern's part derives from it."""

    def __init__(
        self,
        runner: Runner,
        *,
        pepper: bytes,
        database: DatabaseUrl,
        clock: Callable[[], float] = time.time,
        client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX,
        key_publish_seconds: float = DEFAULT_KEY_PUBLISH_SECONDS,
        key_password: bytes | None = None,
    ) -> None:
        super().__init__(pepper, clock, client_id_prefix, key_publish_seconds)
        self._runner = runner
        self.database = database
        self._key_password = key_password
        # Parsed keys by their stored PEM: parsing costs far more than the query (PEM → key is
        # immutable, so this cache can never serve a stale registration).
        self._public_keys: dict[str, PublicKey] = {}
        self._private_keys: dict[str, PrivateKey] = {}

    async def _write(self, work: Callable[[Connection], T], *, duplicate: str = "") -> T:
        try:
            return await self._runner.write(work)
        except sa_exc.IntegrityError as exc:
            # Only a concurrent writer gets here: the checks inside ``work`` come first.
            raise ConfigurationError(duplicate or "conflicting registry change") from exc

    def _touch(
        self, conn: Connection, client_id: str, now: datetime, *, status: str | None = None
    ) -> None:
        if is_decoy(client_id):
            raise NotFoundError(f"unknown client {client_id!r}")  # stored, but no client
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = status
        done = conn.execute(sa.update(clients).where(clients.c.id == client_id).values(**values))
        if done.rowcount == 0:
            raise NotFoundError(f"unknown client {client_id!r}")

    @staticmethod
    def _require_product(conn: Connection, api_id: str) -> None:
        if not conn.execute(
            sa.select(api_products.c.id).where(api_products.c.id == api_id)
        ).first():
            raise NotFoundError(f"unknown API {api_id!r}")

    def _load(self, conn: Connection, client_id: str, now: datetime) -> ClientRecord:
        rows = conn.execute(CLIENT_SQL, {"cid": client_id, "now": now}).all()
        record = self._record(client_id, rows, now.timestamp())
        if record is None:
            raise NotFoundError(f"unknown client {client_id!r}")
        return record

    def _public_key(self, pem: str) -> PublicKey:
        key = self._public_keys.get(pem)
        if key is None:
            if len(self._public_keys) >= _MAX_PARSED_KEYS:
                self._public_keys.clear()
            key = self._public_keys[pem] = load_public_key(pem)
        return key

    def _record(
        self, client_id: str, rows: Sequence[Sequence[Any]], now: float
    ) -> ClientRecord | None:
        head = None
        found = True
        newest = 0
        digests: list[bytes] = []
        weak = False
        keys: list[tuple[int, str]] = []
        apis: list[str] = []
        for row in rows:
            kind, a = row[0], row[1]
            if kind == "c":
                head = (a, row[2], row[3], row[4])
                found = row[5] is None or bool(row[5])  # NULL in listings; False: the decoy
            elif kind == "s":
                digests.append(bytes.fromhex(a))
                weak = weak or bool(row[5])
            elif kind == "k":
                keys.append((row[6], row[2]))  # (registration order, PEM)
            elif kind == "r":
                newest = int(row[6] or 0)
            else:
                apis.append(a)
        if head is None:
            return None
        name, status, created, updated = head
        keys.sort()
        # Built in full even for the decoy, so an unknown id costs what a known one does.
        record = ClientRecord(
            client_id=client_id,
            name=name,
            status=status,
            secret_digests=tuple(digests),
            weak_secret=weak,
            keys=tuple(self._public_key(pem) for _, pem in keys),
            apis=tuple(sorted(apis)),
            created_at=utc(created),
            updated_at=utc(updated),
            tokens_not_before=newest if newest and cutoff_is_live(newest, now) else 0,
        )
        return record if found else None
