"""``taap portal admins add|remove|list`` on a SQLite registry."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from taap.cli.main import cli


def test_admins_add_list_remove(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        done = runner.invoke(cli, ["portal", "admins", *args, "--database-url", url])
        return done.exit_code, done.output

    assert run("add", "Ops@Example.com") == (0, "ops@example.com is an operator\n")
    assert run("list") == (0, "ops@example.com\n")
    assert run("remove", "ops@example.com")[0] == 0
    assert run("list") == (0, "")
    assert run("remove", "ops@example.com")[0] == 1
    assert run("add", "a@b.c\r\nBcc: x@y.z")[0] == 2
