"""``taap demo``: the readable walk, --pop-only and a failed start under --json through click,
and the installed command's --json run."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.processes import run_taap
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


def test_taap_demo_json(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_taap("demo", "--json", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    names = [step["name"] for step in doc["steps"]]
    assert names == [
        "setup",
        "step-1 oauth pop",
        "step-2 token",
        "step-3 api pop",
        "step-4 api call",
        "replay",
        "body tamper",
        "unsubscribed product",
    ]
    assert all(step["ok"] for step in doc["steps"])
    assert doc["steps"][5]["detail"]["response"]["error_code"] == "pop_replayed"
    print(f"taap demo --json took {elapsed:.1f} s", file=sys.stderr)
