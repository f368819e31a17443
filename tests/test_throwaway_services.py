"""The throwaway Redis and PostgreSQL a test session starts when no ``TAAP_TEST_*_URL`` is set:
they serve, they are gone afterwards, and a missing binary fails under CI."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from kit import services
from kit.services import throwaway_postgres, throwaway_redis


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "", parts.port or 0)) == 0


def test_throwaway_redis_serves_then_goes() -> None:
    with throwaway_redis() as url:
        client = redis.Redis.from_url(url)
        try:
            assert client.ping()
            assert client.config_get("save")["save"] == ""  # nothing written to disk
        finally:
            client.close()
    assert not _port_open(url)


def test_throwaway_postgres_serves_then_goes() -> None:
    with throwaway_postgres() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("select current_user, current_database()").fetchone()
            assert row == ("taap", "taap_test")
            conn.execute('CREATE DATABASE "taap_tmp_probe"')  # the kits need CREATEDB
            folder = conn.execute("show data_directory").fetchone()
        assert folder is not None
    assert not _port_open(url)
    assert not Path(folder[0]).exists()


@pytest.mark.parametrize("start", [throwaway_redis, throwaway_postgres])
def test_a_missing_binary_fails_under_ci(start: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not installed"), start():  # type: ignore[operator]
        pass


def test_a_missing_binary_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception), throwaway_redis():
        pass
