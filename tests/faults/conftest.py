"""Fault-injection fixtures: a private ``redis-server`` and a private PostgreSQL cluster that
each test may stop and start at will, so the shared CI services are never touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_kit import PrivatePostgres, PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis.create(tmp_path)
    redis.start()
    try:
        redis.adopt()
        yield redis
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    redis = PrivateRedis.create(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        redis.adopt()
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    postgres = PrivatePostgres.create()
    try:
        postgres.init()
        postgres.start()
        postgres.create_database("taap")
        yield postgres
    finally:
        postgres.destroy()
