"""Every file or stream the CLI reads is capped: an endless input is refused in one line, fast,
without reading it (``/dev/zero`` never ends)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from kit.processes import TAAP, clean_env

ZERO = "/dev/zero"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pop", "build", "--key", ZERO, "--method", "GET", "--uri", "/x"], "key_invalid: file"),
        (["pop", "decode", "-"], "pop_malformed: standard input"),
        (
            ["pop", "verify", "--public-key", ZERO, "--token", "x", "--ehts-json", ZERO],
            "key_invalid: file",
        ),
        (["clients", "create", "--name", "n", "--public-key", ZERO], "key_invalid: file"),
        (["clients", "add-key", "taap-x", ZERO], "key_invalid: file"),
    ],
)
def test_an_endless_input_is_refused_in_one_line(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path}/taap.db"
    if args[0] == "clients":
        args = [*args, "--database-url", database]
    started = time.monotonic()
    with open(ZERO, "rb") as endless:
        result = subprocess.run(
            [TAAP, *args],
            stdin=endless,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"{expected} too large (> 1 MiB)"], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert elapsed < 30  # seconds even on a busy machine; unbounded reading never ends
