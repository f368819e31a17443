"""``SqlRegistry``'s API products and the clients' subscriptions to them (tables
``api_products``, ``subscriptions``)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.errors import ConfigurationError
from taap.server.registry._rules import to_datetime
from taap.server.registry._sql_core import SqlRegistryCore
from taap.server.registry._sql_tables import api_products, subscriptions
from taap.server.registry.port import ApiProduct, ClientRecord

__all__ = ["SqlProducts"]


class SqlProducts(SqlRegistryCore):
    """The product catalogue and who subscribes to what."""

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

    # -- storage steps of RegistryRules -------------------------------------------------
    async def _store_subscription(
        self, client_id: str, api_id: str, *, subscribed: bool
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
            return self._load(conn, client_id, now)

        return await self._write(work)

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
