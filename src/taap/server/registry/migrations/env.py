"""Alembic environment: uses the connection handed over by ``taap.server.registry.migrations``."""

from __future__ import annotations

from alembic import context

from taap.server.registry._sql_tables import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run taap's migrations through `taap db upgrade` (taap.server.registry.migrations.upgrade)"
    )

context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things: later migrations use batch mode there.
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
