"""Usage counters: token issuances, API calls and refusals per client, kind, error_code and
minute, which every node adds to (the portal's Usage page).

The table is a snapshot of this revision (the code's own definition lives in
``taap.server.usage.tables``; a test compares the two).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

metadata = sa.MetaData()

usage_counts = sa.Table(
    "usage_counts",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    # "" for the kinds that are no refusal: a primary key column cannot be NULL.
    sa.Column("error_code", sa.String(64), primary_key=True),
    # Minutes since the Unix epoch (UTC).
    sa.Column("minute", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_usage_counts_minute", "minute"),
)


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
