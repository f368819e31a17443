"""Dependency direction (ARCHITECTURE.md): core is a leaf; client, server and resource never
import one another; nothing imports the CLI. Checked on the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "taap"

# package -> taap packages it must never import
FORBIDDEN = {
    "core": {"server", "client", "resource", "cli", "stores"},
    "client": {"server", "resource", "cli"},
    "server": {"client", "resource", "cli"},
    "resource": {"server", "client", "cli"},
    "stores": {"server", "client", "resource", "cli"},
}


def _taap_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "taap" and len(parts) > 1:
                found.add(parts[1])
    return found


def _files(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package: str) -> None:
    violations = [
        f"{path.relative_to(SRC)} imports taap.{bad}"
        for path in _files(package)
        for bad in sorted(_taap_imports(path) & FORBIDDEN[package])
    ]
    assert violations == []


def test_nothing_imports_the_cli() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "cli" not in path.relative_to(SRC).parts and "cli" in _taap_imports(path)
    ]
    assert offenders == []


def test_checker_sees_imports(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    sample = tmp_path / "x.py"
    sample.write_text("import taap.server.app\nfrom taap.client import auth\nfrom . import y\n")
    assert _taap_imports(sample) == {"server", "client"}
