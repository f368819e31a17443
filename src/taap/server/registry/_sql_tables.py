"""The registry schema as SQLAlchemy Core tables (what the migrations create).

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
    "resource_server_secrets",
    "resource_servers",
    "revocations",
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

resource_servers = sa.Table(
    "resource_servers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_resource_servers_status"),
)

resource_server_secrets = sa.Table(
    "resource_server_secrets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "resource_server_id",
        sa.String(128),
        sa.ForeignKey("resource_servers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # HMAC-SHA-256(pepper, secret), hex, as for clients.
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    # NULL: the current secret; a time: the previous secret, valid until then (rotation).
    sa.Column("expires_at", _TS, nullable=True),
)

#: 64-bit everywhere but SQLite, whose AUTOINCREMENT needs exactly ``INTEGER PRIMARY KEY``
#: (which is 64-bit there anyway).
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revocations = sa.Table(
    "revocations",
    metadata,
    # The change sequence guards poll: AUTOINCREMENT on SQLite, so a seq is never reused after
    # the newest rows are pruned (a reader past it would miss the reused one).
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),
    # Not a foreign key: a revocation outlives the client it names.
    sa.Column("client_id", sa.String(128), nullable=False, index=True),
    sa.Column("jti", sa.String(256), nullable=True),
    sa.Column("api_id", sa.String(64), nullable=True),
    # POSIX seconds (64-bit: past 2038).
    sa.Column("not_before", sa.BigInteger, nullable=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", _TS, nullable=False),
    sa.CheckConstraint("kind IN ('token', 'client', 'product')", name="ck_revocations_kind"),
    sqlite_autoincrement=True,
)
