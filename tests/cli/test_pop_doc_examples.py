"""docs/pop.md's examples run as written: the Python block in-process, the shell block in bash
against the installed ``taap`` (real processes), each in a fresh directory."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pop.md"


def block(name: str, language: str) -> str:
    pattern = rf"<!-- example: {name} -->\n```{language}\n(.*?)```"
    match = re.search(pattern, DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"no {name} example in {DOC}"
    return match.group(1)


def test_python_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "pop_doc_example"}
    exec(compile(block("build-verify", "python"), "docs/pop.md:build-verify", "exec"), namespace)
    assert namespace["verified"].claims["ehts"] == "Content-Type;Authorization;uri;http-method;body"


def test_shell_example(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block("shell", "sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "client.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert '"ehts":"Content-Type;Authorization;uri;http-method;body"' in done.stdout  # piped
    assert "NOT verified" in done.stderr
    assert "Traceback" not in done.stderr
