"""The usage counters' table, in the registry's database (migration ``0005``; a test compares
the two). One row per (client, kind, error_code, minute): nodes add to it with an upsert."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["KINDS", "metadata", "usage_counts"]

#: ``token`` issued, ``call`` let through by a guard, and the refusals of each.
KINDS = ("token", "call", "token_refused", "call_refused")

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
