"""Revocations and resource servers.

``revocations`` is the append-only list guards poll by ``seq``: revoked token ids and cutoffs
(every token of a client, or its use of one product, issued before ``not_before``). It names
clients without a foreign key, so a revocation outlives its client; rows are pruned once
``expires_at`` has passed. ``resource_servers`` and ``resource_server_secrets`` hold the
callers of token introspection, their secrets peppered and hashed as clients' are.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resource_servers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_resource_servers_status"),
    )
    op.create_table(
        "resource_server_secrets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "resource_server_id",
            sa.String(128),
            sa.ForeignKey("resource_servers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
    )
    op.create_index(
        "ix_resource_server_secrets_resource_server_id",
        "resource_server_secrets",
        ["resource_server_id"],
    )
    op.create_table(
        "revocations",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("jti", sa.String(256), nullable=True),
        sa.Column("api_id", sa.String(64), nullable=True),
        sa.Column("not_before", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("kind IN ('token', 'client', 'product')", name="ck_revocations_kind"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_revocations_client_id", "revocations", ["client_id"])
    op.create_index("ix_revocations_expires_at", "revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revocations_expires_at", table_name="revocations")
    op.drop_index("ix_revocations_client_id", table_name="revocations")
    op.drop_table("revocations")
    op.drop_index(
        "ix_resource_server_secrets_resource_server_id", table_name="resource_server_secrets"
    )
    op.drop_table("resource_server_secrets")
    op.drop_table("resource_servers")
