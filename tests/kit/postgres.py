"""Throw-away PostgreSQL databases beside the test database (the ``taap`` role has CREATEDB)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

__all__ = ["drop_database", "temporary_database"]


def drop_database(admin_url: str, name: str) -> None:
    """``DROP DATABASE … WITH (FORCE)``: the connections still open to it die with it.

    An autovacuum worker busy in the database makes PostgreSQL refuse (it is nobody's backend
    to terminate); it is gone a moment later, so the drop is tried again.
    """
    for attempt in range(20):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == 19:
                raise
            time.sleep(0.1)


@contextmanager
def temporary_database(postgres_url: str, prefix: str = "taap_tmp") -> Iterator[str]:
    """A new empty database named ``prefix_<random>``; its URL (``postgres_url``'s credentials
    and options). Dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        drop_database(postgres_url, name)
