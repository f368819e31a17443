"""``SqlRegistry``'s clients: the hot-path read, listings, status, secrets, PoP keys and
subscriptions, and the product catalogue they subscribe to (tables ``clients``,
``client_secrets``, ``client_keys``, ``subscriptions``, ``api_products``).

Nothing is cached but parsed key objects, so a change made by the CLI or another node is seen
by the next request (``TAAP_REGISTRY_CACHE=0`` (docs/protocol.md#settings)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.core.keys import PublicKey
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._decoy import is_decoy
from taap.server.registry._rules import NewClient, NewRevocation, is_client_id, to_datetime
from taap.server.registry._sql_access import append_revocations
from taap.server.registry._sql_core import ALL_CLIENTS_SQL, CLIENT_SQL, SqlRegistryCore
from taap.server.registry._sql_tables import (
    api_products,
    client_keys,
    client_secrets,
    clients,
    subscriptions,
)
from taap.server.registry.port import ApiProduct, ClientRecord, ClientStatus

__all__ = ["SqlClients"]


class SqlClients(SqlRegistryCore):
    """Clients with their secrets, keys and subscriptions; the product catalogue."""

    # -- hot path -----------------------------------------------------------------------
    async def get_client(self, client_id: str) -> ClientRecord | None:
        """The client with its live secrets, keys and subscriptions, or ``None``.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        if not is_client_id(client_id):
            return None
        now = to_datetime(self._clock())
        rows = await self._runner.fetch(CLIENT_SQL, {"cid": client_id, "now": now})
        return self._record(client_id, rows, now.timestamp())

    # -- administration -----------------------------------------------------------------
    async def list_clients(self) -> Sequence[ClientRecord]:
        """Every client, oldest first (secrets, keys and subscriptions included).

        Raises:
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(ALL_CLIENTS_SQL, {"now": now})]

        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for row in await self._runner.read(work, retry=True):
            if not is_decoy(row[-1]):
                grouped.setdefault(row[-1], []).append(row[:-1])
        records = [self._record(cid, rows, now.timestamp()) for cid, rows in grouped.items()]
        found = [r for r in records if r is not None]  # rows of a client deleted meanwhile
        return sorted(found, key=lambda r: (r.created_at, r.client_id))

    async def add_key(self, client_id: str, key: PublicKey) -> ClientRecord:
        """Register another PoP public key for the client.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: the key is already registered for this client.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())
        duplicate = f"key {key.thumbprint} is already registered for this client"

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            exists = conn.execute(
                sa.select(client_keys.c.thumbprint).where(
                    client_keys.c.client_id == client_id,
                    client_keys.c.thumbprint == key.thumbprint,
                )
            ).first()
            if exists:
                raise ConfigurationError(duplicate)
            self._insert_key(conn, client_id, key, now)
            return self._load(conn, client_id, now)

        return await self._write(work, duplicate=duplicate)

    async def remove_key(self, client_id: str, thumbprint: str) -> ClientRecord:
        """Remove a PoP public key by RFC 7638 thumbprint.

        Raises:
            NotFoundError: unknown client or no key with that thumbprint.
            ConfigurationError: it is the client's last key.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            prints = set(
                conn.execute(
                    sa.select(client_keys.c.thumbprint).where(client_keys.c.client_id == client_id)
                ).scalars()
            )
            if thumbprint not in prints:
                raise NotFoundError(f"client {client_id!r} has no key {thumbprint!r}")
            if len(prints) == 1:
                raise ConfigurationError(
                    "cannot remove the client's last key: add the new one first"
                )
            conn.execute(
                sa.delete(client_keys).where(
                    client_keys.c.client_id == client_id, client_keys.c.thumbprint == thumbprint
                )
            )
            return self._load(conn, client_id, now)

        return await self._write(work)

    # -- storage steps of RegistryRules -------------------------------------------------
    async def _insert_client(self, new: NewClient) -> ClientRecord:
        cid = new.client_id
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            if conn.execute(sa.select(clients.c.id).where(clients.c.id == cid)).first():
                raise ConfigurationError(f"client id {cid!r} is already registered")
            for api in new.apis:
                self._require_product(conn, api)
            conn.execute(
                clients.insert().values(
                    id=cid, name=new.name, status="active", created_at=now, updated_at=now
                )
            )
            self._insert_secret(conn, cid, new.digest, weak=new.weak, now=now)
            for key in new.keys:
                self._insert_key(conn, cid, key, now)
            for api in new.apis:
                conn.execute(
                    subscriptions.insert().values(client_id=cid, api_id=api, created_at=now)
                )
            return self._load(conn, cid, now)

        return await self._write(work, duplicate=f"client id {cid!r} is already registered")

    async def _store_status(
        self, client_id: str, status: ClientStatus, revoke: NewRevocation | None
    ) -> ClientRecord:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now, status=status)
            if revoke is not None:
                append_revocations(conn, client_id, [revoke], now)
            return self._load(conn, client_id, now)

        return await self._write(work)

    async def _replace_secret(
        self, client_id: str, digest: bytes, *, weak: bool, grace: float
    ) -> None:
        now = to_datetime(self._clock())

        def work(conn: Connection) -> None:
            self._touch(conn, client_id, now)
            current = conn.execute(
                sa.select(client_secrets.c.id)
                .where(
                    client_secrets.c.client_id == client_id, client_secrets.c.expires_at.is_(None)
                )
                .order_by(client_secrets.c.id.desc())
            ).scalars()
            keep = list(current)[:1] if grace > 0 else []
            # At most two live secrets: the new one and the one it replaces, for ``grace``.
            drop = sa.delete(client_secrets).where(client_secrets.c.client_id == client_id)
            if keep:
                drop = drop.where(client_secrets.c.id.not_in(keep))
                conn.execute(
                    sa.update(client_secrets)
                    .where(client_secrets.c.id.in_(keep))
                    .values(expires_at=now + timedelta(seconds=grace))
                )
            conn.execute(drop)
            self._insert_secret(conn, client_id, digest, weak=weak, now=now)

        await self._write(work)

    async def _store_subscription(
        self, client_id: str, api_id: str, *, subscribed: bool, revoke: NewRevocation | None
    ) -> ClientRecord:
        now = to_datetime(self._clock())
        match = (subscriptions.c.client_id == client_id, subscriptions.c.api_id == api_id)

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            self._require_product(conn, api_id)
            if not subscribed:
                conn.execute(sa.delete(subscriptions).where(*match))
            elif not conn.execute(sa.select(subscriptions.c.api_id).where(*match)).first():
                # Idempotent: an existing subscription (the primary key) is left as it is.
                conn.execute(
                    subscriptions.insert().values(
                        client_id=client_id, api_id=api_id, created_at=now
                    )
                )
            if revoke is not None:
                append_revocations(conn, client_id, [revoke], now)
            return self._load(conn, client_id, now)

        return await self._write(work)

    # -- the product catalogue ----------------------------------------------------------
    async def list_products(self) -> Sequence[ApiProduct]:
        """Every API product, sorted by id.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        rows = await self._runner.read(
            lambda conn: conn.execute(sa.select(api_products).order_by(api_products.c.id)).all(),
            retry=True,
        )
        return [
            ApiProduct(id=r.id, name=r.name, token_server=r.token_server, base_path=r.base_path)
            for r in rows
        ]

    async def _insert_product(self, product: ApiProduct) -> ApiProduct:
        now = to_datetime(self._clock())
        duplicate = f"API {product.id!r} already exists"

        def work(conn: Connection) -> ApiProduct:
            if conn.execute(
                sa.select(api_products.c.id).where(api_products.c.id == product.id)
            ).first():
                raise ConfigurationError(duplicate)
            conn.execute(
                api_products.insert().values(
                    id=product.id,
                    name=product.name,
                    token_server=product.token_server,
                    base_path=product.base_path,
                    created_at=now,
                )
            )
            return product

        return await self._write(work, duplicate=duplicate)

    # -- helpers (run inside a connection) ----------------------------------------------
    @staticmethod
    def _insert_secret(
        conn: Connection, client_id: str, digest: bytes, *, weak: bool, now: datetime
    ) -> None:
        conn.execute(
            client_secrets.insert().values(
                client_id=client_id, digest=digest.hex(), weak=weak, created_at=now, expires_at=None
            )
        )

    def _insert_key(self, conn: Connection, client_id: str, key: PublicKey, now: datetime) -> None:
        pem = key.to_pem().decode("ascii")
        self._public_keys.setdefault(pem, key)
        conn.execute(
            client_keys.insert().values(
                client_id=client_id, thumbprint=key.thumbprint, pem=pem, created_at=now
            )
        )
