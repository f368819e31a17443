"""The sdist and the wheel: an SPDX license, no setuptools deprecation, the package data
inside; then a fresh virtualenv where ``taap demo`` and the pytest plugin work from the wheel
alone (the slow part: pip installs the ``server`` extra's dependencies)."""

from __future__ import annotations

import re
import subprocess
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from kit.docsample import sample_test
from kit.wheel import Dist, FreshVenv

pytestmark = pytest.mark.packaging
SRC = Path(__file__).resolve().parents[2] / "src"

PACKAGE_DATA = (
    "taap/py.typed",
    "taap/portal/templates/base.html",
    "taap/portal/static/portal.css",
    "taap/portal/static/portal.js",
    "taap/postman/postman_prerequest.js",
    "taap/postman/postman_test.js",
    "taap/server/registry/migrations/env.py",
    "taap/testing.py",
)


def _metadata(dist: Dist) -> tuple[dict[str, list[str]], list[str]]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(wheel.read(meta_name).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields, names


def test_build_has_no_deprecation_warning(dist: Dist) -> None:
    assert not re.search(r"deprecat", dist.log, re.I), dist.log[-3000:]
    assert "BuildBackendWarning" not in dist.log


def test_wheel_declares_an_spdx_license_and_the_pytest_plugin(dist: Dist) -> None:
    fields, names = _metadata(dist)
    assert fields["License-Expression"] == ["Apache-2.0"]
    assert "License" not in fields  # the legacy free-text field
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    with zipfile.ZipFile(dist.wheel) as wheel:
        entry_points = wheel.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert "[pytest11]\ntaap = taap.testing" in entry_points
    assert "taap = taap.cli.main:main" in entry_points


def test_wheel_and_sdist_carry_the_package_data(dist: Dist) -> None:
    _, names = _metadata(dist)
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing
    migrations = [n for n in names if re.match(r"taap/server/registry/migrations/versions/r\d+", n)]
    assert len(migrations) >= 2
    templates = [n for n in names if n.startswith("taap/portal/templates/")]
    assert len(templates) == len(list((SRC / "taap/portal/templates").glob("*.html")))
    with tarfile.open(dist.sdist) as sdist:
        inside = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in (
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "docs/protocol.md",
        *(f"src/{n}" for n in PACKAGE_DATA),
    ):
        assert name in inside, name


def _run(
    fresh: FreshVenv, cmd: list[str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=fresh.env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def test_taap_demo_runs_from_the_wheel(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    result = _run(fresh_venv, [str(fresh_venv.bin / "taap"), "demo"], tmp_path, 180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "pop_replayed" in result.stdout
    where = _run(
        fresh_venv, [fresh_venv.python, "-c", "import taap; print(taap.__file__)"], tmp_path, 60
    )
    assert str(fresh_venv.bin.parent) in where.stdout  # the wheel's copy, not the checkout


def test_pytest_plugin_works_in_a_fresh_project(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_taap_sandbox.py").write_text(sample_test())
    result = _run(
        fresh_venv, [fresh_venv.python, "-m", "pytest", "-q", "-W", "error"], project, 300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "3 passed" in output
