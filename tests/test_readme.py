"""The README's examples stay true: its PoP snippet runs, its commands and options exist."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from taap.cli.main import cli
from taap.core import generate_private_key

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


def test_readme_shows_the_two_commands_first() -> None:
    first = _blocks("sh")[0]
    assert "make demo" in first
    assert "make test" in first


def test_pop_core_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = next(b for b in _blocks("python") if "build_pop_token" in b)
    (tmp_path / "client.pem").write_bytes(generate_private_key().to_pem())
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    verified = scope["verified"]
    assert verified.names[-1] == "body"  # type: ignore[attr-defined]


def _shell_commands() -> list[list[str]]:
    commands = []
    for block in _blocks("sh"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("taap ") or " taap " in line:
                words = shlex.split(line[line.index("taap ") :].replace("…", "x"))
                commands.append(words[1:])
    return commands


def test_shell_commands_and_options_exist() -> None:
    runner = CliRunner()
    seen = 0
    for words in _shell_commands():
        path = [w for w in words[:2] if not w.startswith("-")]
        # the sub-command path is the leading words that name groups/commands
        result = runner.invoke(cli, [*path[:1], "--help"])
        assert result.exit_code == 0, (words, result.output)
        group_help = result.output
        if len(path) > 1 and "Commands:" in group_help:
            result = runner.invoke(cli, [*path[:2], "--help"])
            assert result.exit_code == 0, (words, result.output)
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert option in result.output, f"{option} not an option of {' '.join(path)}"
        seen += 1
    assert seen >= 10


def test_every_env_setting_in_the_readme_is_documented_once() -> None:
    names = set(re.findall(r"`(TAAP_[A-Z_]+)`", README))
    assert {"TAAP_DATABASE_URL", "TAAP_REDIS_URL", "TAAP_PEPPER", "TAAP_TOKEN_TTL"} <= names
    assert os.environ.get("TAAP_NOT_A_SETTING") is None
