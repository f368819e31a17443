"""The registry schema as SQLAlchemy Core tables (what migration 0001 creates).

The migrations do not import this module (a migration must keep describing the schema of its
own version); a test compares the two so they cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "VERSION_TABLE",
    "api_products",
    "client_keys",
    "client_secrets",
    "clients",
    "metadata",
    "signing_keys",
    "subscriptions",
]

#: Alembic's version table, named so it cannot clash with another application's.
VERSION_TABLE = "taap_alembic_version"

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)


def _owner(*, index: bool = False, primary_key: bool = False) -> sa.Column[str]:
    """The owning client's id: its rows go with the client."""
    return sa.Column(
        "client_id",
        sa.String(128),
        sa.ForeignKey("clients.id", ondelete="CASCADE"),
        nullable=False,
        index=index,
        primary_key=primary_key,
    )


clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_clients_status"),
)

client_secrets = sa.Table(
    "client_secrets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _owner(index=True),
    # HMAC-SHA-256(pepper, secret), hex: never the secret itself.
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("weak", sa.Boolean, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    # NULL: the current secret; a time: the previous secret, valid until then (rotation).
    sa.Column("expires_at", _TS, nullable=True),
)

client_keys = sa.Table(
    "client_keys",
    metadata,
    # A surrogate id keeps registration order (several keys can share a timestamp).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _owner(),
    sa.Column("thumbprint", sa.String(64), nullable=False),
    sa.Column("pem", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.UniqueConstraint("client_id", "thumbprint", name="uq_client_keys_client_thumbprint"),
)

api_products = sa.Table(
    "api_products",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_server", sa.String(2), nullable=False),
    sa.Column("base_path", sa.String(200), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.CheckConstraint("token_server IN ('v2', 'v6')", name="ck_api_products_token_server"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    _owner(primary_key=True),
    sa.Column(
        "api_id",
        sa.String(64),
        sa.ForeignKey("api_products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created_at", _TS, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    # PKCS#8 PEM (encrypted when a key-encryption password is configured).
    sa.Column("pem", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("publish_until", _TS, nullable=True),
    sa.Column("retired", sa.Boolean, nullable=False),
)
