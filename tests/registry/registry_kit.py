"""Shared helpers of the registry tests: the pepper, a movable clock, throw-away databases."""

from __future__ import annotations

import time
import uuid

import psycopg

from kit.postgres import drop_database
from taap.server.registry._decoy import DECOY_CLIENT_ID
from taap.server.registry.database import parse_database_url
from taap.server.registry.port import DEFAULT_PRODUCTS

PEPPER = b"registry-test-pepper-0123456789"


class FakeClock:
    """POSIX seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _admin_url(url: str) -> str:
    # psycopg wants a libpq URL: the plain postgresql:// form with the password kept.
    parsed = parse_database_url(url).url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PgDatabases:
    """Creates and drops throw-away databases beside the test database."""

    def __init__(self, base_url: str) -> None:
        self.base = parse_database_url(base_url).url
        self.admin = _admin_url(base_url)
        self.run = uuid.uuid4().hex[:8]
        self.made: list[str] = []

    def libpq(self, name: str) -> str:
        """A URL psycopg takes, for database ``name``."""
        return self.base.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def reset(self, name: str, kid: str) -> None:
        """Bring a migrated database back to its first-start state (seeded signing key ``kid``)."""
        defaults = [p.id for p in DEFAULT_PRODUCTS]
        with psycopg.connect(self.libpq(name)) as conn:
            # Every client but the timing decoy (migration 0002); its rows go by ON DELETE CASCADE.
            conn.execute("DELETE FROM clients WHERE id <> %s", (DECOY_CLIENT_ID,))
            # Revocations name clients without a foreign key: they go on their own.
            conn.execute("DELETE FROM revocations")
            conn.execute("DELETE FROM resource_servers")  # secrets by ON DELETE CASCADE
            conn.execute("DELETE FROM api_products WHERE NOT (id = ANY(%s))", (defaults,))
            conn.execute("DELETE FROM signing_keys WHERE kid <> %s", (kid,))
            conn.execute("UPDATE signing_keys SET publish_until = NULL, retired = false")

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def create(self, *, template: str | None = None) -> str:
        name = f"taap_reg_{self.run}_{len(self.made)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        self.made.append(name)
        return name

    def drop(self, name: str) -> None:
        drop_database(self.admin, name)

    def drop_all(self) -> None:
        for name in self.made:
            self.drop(name)
