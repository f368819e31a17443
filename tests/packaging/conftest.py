"""The package as a user gets it: ``python -m build`` makes the sdist and the wheel, and a new
virtualenv outside the repository installs the wheel with the ``server`` extra (pip fetches the
dependencies as it would for anyone; its cache makes a second run quick)."""

from __future__ import annotations

import sys
import venv
from pathlib import Path

import pytest

from kit.processes import need_service
from kit.wheel import Dist, FreshVenv, run_checked

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 600


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from it (so the sdist is complete)."""
    try:
        import build  # noqa: F401
    except ImportError:
        need_service("python -m build", "the build package is not installed (dev extra)")
    out = tmp_path_factory.mktemp("dist")
    log = run_checked(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        timeout=BUILD_TIMEOUT,
        cwd=out,
    )
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1, log
    assert len(sdists) == 1, log
    return Dist(wheels[0], sdists[0], log)


@pytest.fixture(scope="session")
def fresh_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    folder = tmp_path_factory.mktemp("fresh-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(folder / "venv")
    fresh = FreshVenv(folder / "venv" / "bin")
    run_checked(
        [fresh.python, "-m", "pip", "install", "--quiet", f"{dist.wheel}[server]", "pytest"],
        timeout=INSTALL_TIMEOUT,
        cwd=folder,
        env=fresh.env(),
    )
    return fresh
