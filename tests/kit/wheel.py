"""The built package and a fresh virtualenv holding it (tests/packaging)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Dist", "FreshVenv", "run_checked"]


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path
    log: str


@dataclass(frozen=True)
class FreshVenv:
    """A virtualenv holding only the wheel (with ``server``) and pytest."""

    bin: Path

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def env(self) -> dict[str, str]:
        """The user's environment: no repository on the path, no caller's settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAAP_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.bin.parent)
        return env


def run_checked(
    cmd: list[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:4])} … exited {result.returncode}:\n{output[-4000:]}")
    return output
