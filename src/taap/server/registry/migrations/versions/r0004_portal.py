"""The developer portal: accounts, companies and groups, sign-in codes, sessions, apps (each a
registry client), pending subscriptions, products needing approval, operators, audit events.

The tables are a snapshot of this revision (the code's own definitions live in
``taap.portal.tables``; a test compares the two), created and dropped as one set.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)
_ID = sa.String(32)
_EMAIL = sa.String(320)

accounts = sa.Table(
    "portal_accounts",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("email", _EMAIL, nullable=False, unique=True),
    # NULL until the developer chose at the first sign-in.
    sa.Column("kind", sa.String(16), nullable=True),
    sa.Column("company_id", _ID, nullable=True),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

companies = sa.Table(
    "portal_companies",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner_id", _ID, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

groups = sa.Table(
    "portal_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("company_id", _ID, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.UniqueConstraint("company_id", "name", name="uq_portal_groups_company_name"),
)

group_members = sa.Table(
    "portal_group_members",
    metadata,
    sa.Column("group_id", sa.Integer, primary_key=True),
    sa.Column("account_id", _ID, primary_key=True),
)

invitations = sa.Table(
    "portal_invitations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("company_id", _ID, nullable=False),
    sa.Column("email", _EMAIL, nullable=False, index=True),
    sa.Column("group_name", sa.String(100), nullable=True),
    sa.Column("token_digest", sa.String(64), nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

sign_in_codes = sa.Table(
    "portal_sign_in_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", _EMAIL, nullable=False, index=True),
    # HMAC-SHA-256(pepper, email + code), hex.
    sa.Column("code_digest", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

sessions = sa.Table(
    "portal_sessions",
    metadata,
    # SHA-256 of the cookie's random id, hex: the database never holds a usable session id.
    sa.Column("id_digest", sa.String(64), primary_key=True),
    # NULL: a visitor who has not signed in yet (the sign-in forms need a CSRF token too).
    sa.Column("account_id", _ID, nullable=True, index=True),
    # JSON: flash lines, the e-mail being signed in, a one-time secret sealed with the id.
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("last_seen", _TS, nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

apps = sa.Table(
    "portal_apps",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("account_id", _ID, nullable=False, index=True),
    sa.Column("company_id", _ID, nullable=True, index=True),
    sa.Column("client_id", sa.String(128), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

pending_subscriptions = sa.Table(
    "portal_pending_subscriptions",
    metadata,
    sa.Column("app_id", _ID, primary_key=True),
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.CheckConstraint(
        "status IN ('pending', 'approved', 'rejected')", name="ck_portal_pending_status"
    ),
)

approval_products = sa.Table(
    "portal_approval_products",
    metadata,
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("created_at", _TS, nullable=False),
)

admins = sa.Table(
    "portal_admins",
    metadata,
    sa.Column("email", _EMAIL, primary_key=True),
    sa.Column("created_at", _TS, nullable=False),
)

audit_events = sa.Table(
    "portal_audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False, index=True),
    sa.Column("actor", _EMAIL, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    # JSON object; never a secret, code or token.
    sa.Column("details", sa.Text, nullable=False),
)


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
