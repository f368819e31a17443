"""The public surface of ``taap.client``: pinned ``__all__``, lazy ``requests``, quick start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import taap.client
from taap.client import PopAuth
from taap.core import PrivateKey

from ._fake import FakeTaap
from .conftest import CLIENT_ID, SECRET


def test_all_names_exist_and_are_public() -> None:
    assert len(taap.client.__all__) == len(set(taap.client.__all__))
    for name in taap.client.__all__:
        assert not name.startswith("_")
        assert getattr(taap.client, name) is not None
    for required in ("PopAuth", "PopRequestsAuth", "TokenClient", "Token", "RetryPolicy"):
        assert required in taap.client.__all__


def test_base_import_does_not_need_requests() -> None:
    code = "import sys, taap.client; print('requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        taap.client.nothing_here  # noqa: B018


def test_quick_start(fake: FakeTaap, fake_url: str, rsa_key: PrivateKey, tmp_path: Path) -> None:
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(rsa_key.to_pem())
    auth = PopAuth.from_key_file(
        f"{fake_url}/oauth2/v2/tokens", client_id=CLIENT_ID, client_secret=SECRET, key_path=key_path
    )
    with httpx.Client(auth=auth) as http:
        answer = http.get(f"{fake_url}/api/devices/1")
    auth.tokens.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["client_id"] == CLIENT_ID
