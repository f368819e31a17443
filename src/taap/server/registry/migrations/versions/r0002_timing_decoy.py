"""Timing decoy client: the row the hot lookup reads when a client id is unknown.

SECURITY.md A2: an unknown client and a wrong secret must cost the same. ``get_client`` reads
this client's rows (one secret, one key, one subscription: the shape of a typical client)
when the id matches nothing, so both paths do the same database and parsing work. The id holds
a ``:``, which client ids cannot contain, the secret digest is random (the HMAC of no secret
anyone holds), the status is ``disabled``, and the key's private half is thrown away here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from taap.core.keys import generate_private_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: As of this revision (taap.server.registry._decoy holds the same values; a test compares them).
DECOY_CLIENT_ID = "taap:timing-decoy"
DECOY_API = "connectivity"

_TS = sa.DateTime(timezone=True)
_clients = sa.table(
    "clients",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("status", sa.String),
    sa.column("created_at", _TS),
    sa.column("updated_at", _TS),
)
_secrets = sa.table(
    "client_secrets",
    sa.column("client_id", sa.String),
    sa.column("digest", sa.String),
    sa.column("weak", sa.Boolean),
    sa.column("created_at", _TS),
    sa.column("expires_at", _TS),
)
_keys = sa.table(
    "client_keys",
    sa.column("client_id", sa.String),
    sa.column("thumbprint", sa.String),
    sa.column("pem", sa.Text),
    sa.column("created_at", _TS),
)
_subscriptions = sa.table(
    "subscriptions",
    sa.column("client_id", sa.String),
    sa.column("api_id", sa.String),
    sa.column("created_at", _TS),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    key = generate_private_key(2048).public
    op.bulk_insert(
        _clients,
        [
            {
                "id": DECOY_CLIENT_ID,
                "name": "timing decoy (never authenticates)",
                "status": "disabled",
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    op.bulk_insert(
        _secrets,
        [
            {
                "client_id": DECOY_CLIENT_ID,
                "digest": secrets.token_hex(32),
                "weak": False,
                "created_at": now,
                "expires_at": None,
            }
        ],
    )
    op.bulk_insert(
        _keys,
        [
            {
                "client_id": DECOY_CLIENT_ID,
                "thumbprint": key.thumbprint,
                "pem": key.to_pem().decode("ascii"),
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        _subscriptions, [{"client_id": DECOY_CLIENT_ID, "api_id": DECOY_API, "created_at": now}]
    )


def downgrade() -> None:
    # Child rows first: SQLite enforces ON DELETE CASCADE only with PRAGMA foreign_keys.
    for table in (_subscriptions, _keys, _secrets):
        op.execute(sa.delete(table).where(table.c.client_id == DECOY_CLIENT_ID))
    op.execute(sa.delete(_clients).where(_clients.c.id == DECOY_CLIENT_ID))
