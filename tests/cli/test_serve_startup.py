"""A server that cannot start says why in one plain line on stderr and exits non-zero: no JSON
log line, no traceback, no name of a temporary file, and nothing left behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.processes import clean_env, run_taap


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.parametrize(
    "workers", [[], ["--workers", "2", "--redis-url", "redis://127.0.0.1:1/0"]]
)
def test_serve_on_a_port_in_use(tmp_path: Path, busy_port: int, workers: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    done = run_taap(
        "serve", "--port", str(busy_port), "--database-url", url, *workers, cwd=tmp_path
    )
    assert done.returncode != 0
    assert done.stderr == f"taap serve: port {busy_port} on 127.0.0.1 is already in use\n"
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no pepper file


@pytest.mark.parametrize("given", ["absolute", "relative"])
def test_serve_with_a_database_in_a_missing_folder(tmp_path: Path, given: str) -> None:
    missing = tmp_path / "no" / "such"
    url = f"sqlite:///{missing / 'taap.db'}" if given == "absolute" else "sqlite:///no/such/taap.db"
    done = run_taap("serve", "--port", "0", "--database-url", url, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr == f"taap serve: database folder {missing} does not exist\n"
    assert done.stdout == ""
    assert not (tmp_path / "no").exists()


def test_serve_with_a_database_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    url = f"sqlite:///{tmp_path / 'plain' / 'taap.db'}"
    done = run_taap("serve", "--port", "0", "--database-url", url, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr == f"taap serve: database folder {tmp_path / 'plain'} is not a folder\n"


def test_sample_api_on_a_port_in_use(tmp_path: Path, busy_port: int) -> None:
    done = run_taap("sample-api", "--token-server", "http://127.0.0.1:9", "--port", str(busy_port))
    assert done.returncode != 0
    assert done.stderr == f"taap sample-api: port {busy_port} on 127.0.0.1 is already in use\n"


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--database-url", "sqlite:///taap.db"],
        ["sample-api", "--token-server", "http://x"],
    ],
)
def test_bad_listener_flags_are_one_line(tmp_path: Path, command: list[str]) -> None:
    flags = ["--header-timeout", "0", "--body-min-rate", "0", "--max-connections", "0"]
    done = run_taap(*command, *flags, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("configuration_error: invalid settings: ")
    for variable in ("TAAP_HEADER_TIMEOUT", "TAAP_BODY_MIN_RATE", "TAAP_MAX_CONNECTIONS"):
        assert f"({variable})" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("setting", "value", "line"),
    [
        (
            "TAAP_SMTP_URL",
            "http://user:hunter2@mail.example.com",
            "TAAP_SMTP_URL must be console, smtp://host:port or "
            "smtp+starttls://user:pass@host:port",
        ),
        ("TAAP_SMTP_URL", "smtp://mail.example.com:port", "TAAP_SMTP_URL has a bad port"),
        ("TAAP_MAIL_FROM", "no-at-sign", "TAAP_MAIL_FROM 'no-at-sign' is not an e-mail address"),
    ],
)
def test_serve_with_portal_and_a_bad_mail_setting(
    tmp_path: Path, setting: str, value: str, line: str
) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    done = run_taap(
        "serve",
        "--port",
        "0",
        "--database-url",
        url,
        "--with-portal",
        env=clean_env(**{setting: value}),
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert done.stderr == f"taap serve: {line}\n"
    assert done.stdout == ""
    assert "hunter2" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing opened or created
