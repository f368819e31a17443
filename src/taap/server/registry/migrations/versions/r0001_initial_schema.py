"""Initial registry schema: clients, secrets, keys, API products, subscriptions, signing keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)

#: The five API products of the seed's table (docs/registry.md), as of this revision.
_PRODUCTS = (
    ("call-verification", "Call Verification", "v6", "/call-verification/v1"),
    ("connectivity", "Connectivity", "v2", "/iot-connectivity/v1"),
    ("fraud-prevention", "Fraud Prevention", "v6", "/fraud-prevention/v1"),
    ("location", "Location", "v2", "/location/v1"),
    ("sms-notification", "SMS Notification", "v2", "/sms/v1"),
)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_clients_status"),
    )
    op.create_table(
        "client_secrets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("weak", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
    )
    op.create_index("ix_client_secrets_client_id", "client_secrets", ["client_id"])
    op.create_table(
        "client_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("thumbprint", sa.String(64), nullable=False),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("client_id", "thumbprint", name="uq_client_keys_client_thumbprint"),
    )
    products = op.create_table(
        "api_products",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_server", sa.String(2), nullable=False),
        sa.Column("base_path", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("token_server IN ('v2', 'v6')", name="ck_api_products_token_server"),
    )
    op.create_table(
        "subscriptions",
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "api_id",
            sa.String(64),
            sa.ForeignKey("api_products.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("publish_until", _TS, nullable=True),
        sa.Column("retired", sa.Boolean, nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        products,
        [
            {"id": i, "name": n, "token_server": t, "base_path": p, "created_at": now}
            for i, n, t, p in _PRODUCTS
        ],
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("subscriptions")
    op.drop_table("api_products")
    op.drop_table("client_keys")
    op.drop_index("ix_client_secrets_client_id", table_name="client_secrets")
    op.drop_table("client_secrets")
    op.drop_table("clients")
