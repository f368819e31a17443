"""Fixtures of the CLI tests. ``taap token`` / ``call`` / ``configure`` talk to the fake token
server of the client tests (``tests/client``), served by a real uvicorn on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client.conftest import SECRET, fake, fake_url
from taap.core import PrivateKey

__all__ = ["fake", "fake_url"]  # fixtures: pytest collects them from this module's names


@pytest.fixture
def no_taap_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TAAP_* of the machine reaches the command; a config folder of the test's own, and
    the client secret in MY_SECRET (what ``--client-secret-env MY_SECRET`` reads)."""
    for name in list(os.environ):
        if name.startswith("TAAP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MY_SECRET", SECRET)


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: PrivateKey) -> str:
    """The client's private key as a PEM file (``--key``)."""
    path = tmp_path / "client.pem"
    path.write_bytes(rsa_key.to_pem())
    return str(path)
