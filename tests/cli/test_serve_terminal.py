"""``taap serve`` started in a terminal (a pty) as a person starts it: a banner naming what it
serves, the database password masked, and plain log lines; JSON lines when asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kit.processes import TAAP, clean_env, free_port
from kit.terminal import run_on_terminal, terminal_env

pytestmark = pytest.mark.e2e

STARTED = b"Application startup complete"


def _serve(tmp_path: Path, database_url: str, *args: str, **env: str) -> str:
    port = free_port()
    run = run_on_terminal(
        [TAAP, "serve", "--port", str(port), "--database-url", database_url, *args],
        env=terminal_env(clean_env(), **env),
        until=lambda output: STARTED in output,
        cwd=str(tmp_path),
        timeout=90,
    )
    assert STARTED in run.output, run.text
    assert run.returncode == 0, run.text  # SIGTERM: a clean stop
    return re.sub(r"\x1b\[[0-9;]*m", "", run.text)  # colours off: the words are tested


def _banner(text: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in text.splitlines():
        label, _, value = line.strip().partition("  ")
        if value and not line.strip().startswith("{"):
            rows[label] = value.strip()
    return rows


def test_banner_and_plain_logs_on_a_terminal(tmp_path: Path, postgres_url: str) -> None:
    assert ":taap@" in postgres_url  # the test database's URL carries a password
    plain = _serve(tmp_path, postgres_url, "--with-sample-apis", TAAP_PEPPER="p" * 32)
    assert plain.startswith("taap serve ")
    rows = _banner(plain)
    port = rows["listening"].rpartition(":")[2]
    assert rows["listening"] == f"http://127.0.0.1:{port}"
    assert rows["tokens"] == (
        f"POST http://127.0.0.1:{port}/oauth2/v2/tokens, http://127.0.0.1:{port}/oauth2/v6/tokens"
    )
    assert rows["issuer"] == f"http://127.0.0.1:{port}/oauth2/v1"
    assert rows["database"] == postgres_url.replace(":taap@", ":***@")
    assert rows["workers"] == "1"
    assert rows["portal"] == "off"
    assert rows["sample APIs"].startswith("on (")
    assert rows["logs"].startswith("text ")
    assert ":taap@" not in plain  # the password, nowhere
    # The log lines are for a person: none is a JSON object.
    after = plain.split("Ctrl-C stops the server.", 1)[1]
    assert "INFO" in after
    assert not [line for line in after.splitlines() if line.strip().startswith("{")]


def test_json_logs_on_a_terminal_when_asked(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'taap.db'}"
    text = _serve(tmp_path, database, TAAP_LOG_FORMAT="json")
    assert "taap serve " in text  # the banner is the terminal's all the same
    assert _banner(text)["logs"].startswith("json ")
    logged = [line for line in text.splitlines() if line.startswith("{")]
    assert logged
    assert all("message" in json.loads(line) for line in logged)
