"""Database URLs in the forms users write (TAAP.md A5, A8); passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taap.errors import ConfigurationError
from taap.server.registry.database import DEFAULT_DATABASE_URL, mask_url, parse_database_url


@pytest.mark.parametrize(
    ("text", "driver_url", "backend", "driver", "is_async"),
    [
        ("sqlite:///./taap.db", "sqlite+pysqlite:///./taap.db", "sqlite", "pysqlite", False),
        (
            "sqlite:////var/lib/t.db",
            "sqlite+pysqlite:////var/lib/t.db",
            "sqlite",
            "pysqlite",
            False,
        ),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db", "sqlite", "aiosqlite", True),
        (
            "postgresql://u:p@db.example:5433/taap",
            "postgresql+psycopg://u:***@db.example:5433/taap",
            "postgresql",
            "psycopg",
            False,
        ),
        (
            "postgres://u:p@h/taap",
            "postgresql+psycopg://u:***@h/taap",
            "postgresql",
            "psycopg",
            False,
        ),
        (
            "postgresql+psycopg://h/taap",
            "postgresql+psycopg://h/taap",
            "postgresql",
            "psycopg",
            False,
        ),
        (
            "postgresql+asyncpg://h/taap",
            "postgresql+asyncpg://h/taap",
            "postgresql",
            "asyncpg",
            True,
        ),
        (
            "postgresql+psycopg_async://h/t",
            "postgresql+psycopg_async://h/t",
            "postgresql",
            "psycopg_async",
            True,
        ),
        (
            "  postgresql://h/t?sslmode=require ",
            "postgresql+psycopg://h/t?sslmode=require",
            "postgresql",
            "psycopg",
            False,
        ),
    ],
)
def test_forms(text: str, driver_url: str, backend: str, driver: str, is_async: bool) -> None:
    parsed = parse_database_url(text)
    assert parsed.masked == driver_url
    assert parsed.backend == backend
    assert parsed.driver == driver
    assert parsed.is_async is is_async


def test_default_is_a_file_in_the_working_directory() -> None:
    parsed = parse_database_url(DEFAULT_DATABASE_URL)
    assert DEFAULT_DATABASE_URL == "sqlite:///./taap.db"
    assert parsed.sqlite_path == Path("./taap.db")


def test_sqlite_paths() -> None:
    assert parse_database_url("sqlite:////abs/dir/t.db").sqlite_path == Path("/abs/dir/t.db")
    assert parse_database_url("sqlite:///rel/t.db").sqlite_path == Path("rel/t.db")
    assert parse_database_url("sqlite://").sqlite_path is None
    assert parse_database_url("sqlite:///:memory:").sqlite_path is None
    assert parse_database_url("postgresql://h/db").sqlite_path is None


def test_password_with_special_characters_is_kept_but_never_shown() -> None:
    parsed = parse_database_url("postgresql://taap:p%40ss%3Aw0rd@h/db")
    assert parsed.url.password == "p@ss:w0rd"
    for text in (repr(parsed), str(parsed), parsed.masked):
        assert "p@ss" not in text
        assert "p%40ss" not in text
        assert "***" in text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("mysql://u:hunter2@h/db", "unsupported database"),
        ("postgresql+pg8000://u:hunter2@h/db", "unsupported postgresql driver"),
        ("sqlite+pysqlcipher:///x.db", "unsupported sqlite driver"),
        ("not a url hunter2", "cannot parse"),
        ("postgresql://u:hunter2@h", "names no database"),
        ("sqlite://u:hunter2@host/x.db", "names a file"),
    ],
)
def test_refused_with_password_masked(text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        parse_database_url(text)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in (info.value.log_detail or "")
    # No chained parser error that could carry the raw string into a traceback.
    assert info.value.__cause__ is None or "hunter2" not in str(info.value.__cause__)


def test_mask_url_even_when_unparseable() -> None:
    assert mask_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert mask_url("oops postgres://admin:pa ss@x") == "oops postgres://admin:pa ss@x"
    assert (
        mask_url("redis://:tok@h:6379/0 and sqlite:///x") == "redis://:***@h:6379/0 and sqlite:///x"
    )
    assert mask_url("sqlite:///./taap.db") == "sqlite:///./taap.db"


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_is_a_configuration_error(text: str) -> None:
    try:
        parsed = parse_database_url(text)
    except ConfigurationError:
        return  # the only refusal allowed: nothing else escapes
    assert parsed.backend in ("sqlite", "postgresql")


@given(
    st.text(
        alphabet=st.characters(
            blacklist_characters="@/\x00", blacklist_categories=("Zs", "Cc", "Cs")
        ),
        min_size=6,
        max_size=40,
    )
)
@settings(max_examples=300, deadline=None)
def test_no_password_survives_masking(password: str) -> None:
    from urllib.parse import quote

    raw = f"postgresql://taap:{password}@db.example/taap"
    assert password not in mask_url(raw).replace("taap", "").replace("db.example", "")
    quoted = f"postgresql://taap:{quote(password, safe='')}@db.example/taap"
    parsed = parse_database_url(quoted)
    assert parsed.url.password == password
    assert quote(password, safe="") not in repr(parsed)
    assert password not in repr(parsed).replace("taap", "").replace("db.example", "")
