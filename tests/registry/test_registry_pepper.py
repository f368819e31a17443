"""Pepper rules (TAAP.md A5): env first, a 0600 file beside a SQLite database, else refuse."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from taap.errors import ConfigurationError
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import (
    PepperFile,
    PepperValue,
    load_pepper,
    pepper_source,
    read_or_create_pepper_file,
)

LONG = "0123456789abcdef-pepper"


def test_env_wins_for_every_backend(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/t.db", "postgresql://u:p@h/db", "sqlite://"):
        source = pepper_source(f"  {LONG}\n", parse_database_url(url))
        assert source == PepperValue(LONG.encode())
    assert not (tmp_path / "pepper").exists()


def test_sqlite_file_beside_database(tmp_path: Path) -> None:
    source = pepper_source(None, parse_database_url(f"sqlite:///{tmp_path}/sub.db"))
    assert source == PepperFile(tmp_path / "pepper")
    assert pepper_source("", parse_database_url("sqlite:///./taap.db")) == PepperFile(
        Path("./pepper")
    )


@pytest.mark.parametrize("url", ["postgresql://u:p@h/db", "postgres://h/db", "sqlite://"])
def test_refused_without_env(url: str) -> None:
    with pytest.raises(ConfigurationError, match="TAAP_PEPPER is required"):
        pepper_source(None, parse_database_url(url))


def test_short_env_refused() -> None:
    with pytest.raises(ConfigurationError, match="too short") as info:
        pepper_source("short", parse_database_url("postgresql://h/db"))
    assert "short" not in info.value.description.replace("too short", "")


def test_repr_hides_value() -> None:
    assert LONG not in repr(PepperValue(LONG.encode()))


def test_file_created_0600_once_and_reused(tmp_path: Path) -> None:
    database = parse_database_url(f"sqlite:///{tmp_path}/taap.db")
    first = load_pepper(database)
    path = tmp_path / "pepper"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 43
    assert load_pepper(database) == first
    # The file holds exactly what TAAP_PEPPER would: moving to the variable changes nothing.
    assert load_pepper(database, path.read_text()) == first
    assert [p.name for p in tmp_path.iterdir()] == ["pepper"]  # no temporary left behind


def test_concurrent_first_use_agrees(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(read_or_create_pepper_file(path)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert results[0] == path.read_text().strip().encode()


def test_empty_file_refused(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("\n")
    with pytest.raises(ConfigurationError, match="pepper file"):
        read_or_create_pepper_file(tmp_path / "pepper")


def test_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    database = parse_database_url(f"sqlite:///{tmp_path}/missing/taap.db")
    with pytest.raises(OSError, match="No such file"):
        load_pepper(database)
