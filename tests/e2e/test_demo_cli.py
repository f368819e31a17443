"""``taap demo`` through click: the readable walk, --pop-only, and a failed start under --json."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from taap.cli.main import cli
from taap.errors import UnavailableError

pytestmark = pytest.mark.e2e


def test_readable_walk_shows_request_lines_and_verdicts() -> None:
    result = CliRunner().invoke(cli, ["demo"], terminal_width=100)
    assert result.exit_code == 0, result.output
    out = result.output
    for line in (
        "POST http://127.0.0.1:",  # steps 1-2
        "/oauth2/v2/tokens",
        "GET http://127.0.0.1:",  # steps 3-4
        "/iot-connectivity/v1/devices/8901260000000000001",
        '"status": "approved"',
        '"expires_in": "3599"',
        '"error_code": "pop_replayed"',
        '"error_code": "pop_edts_mismatch"',
        '"error_code": "not_subscribed"',
        "8/8 steps as expected",
    ):
        assert line in out, line
    assert "NOT as expected" not in out


def test_pop_only() -> None:
    result = CliRunner().invoke(cli, ["demo", "--pop-only", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["ok"] is True
    assert [s["name"] for s in doc["steps"]] == ["build", "verify", "tampered body"]


def test_failed_start_is_one_json_document(monkeypatch: pytest.MonkeyPatch) -> None:
    import taap.sandbox

    def broken(**_: object) -> object:
        raise UnavailableError("the sandbox servers did not start", log_detail="test")

    monkeypatch.setattr(taap.sandbox, "run_demo", broken)
    result = CliRunner().invoke(cli, ["demo", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc == {
        "ok": False,
        "steps": [
            {
                "name": "setup",
                "ok": False,
                "detail": {
                    "error_code": "unavailable",
                    "error": "the sandbox servers did not start",
                    "why": "test",
                },
            }
        ],
    }
