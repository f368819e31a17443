"""Private signing keys at rest under ``TAAP_KEY_ENCRYPTION_KEY``: the registry CLI and
``taap serve`` write and read them with the same key; the stored PEM is encrypted; a server
without the key, or with another one, stops at start-up with one line."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from ops_kit import TAAP, V2, environment, register, start

from taap.core import load_private_key, public_key_from_jwk
from taap.core.tokens import verify_access_token
from taap.errors import KeyFormatError

pytestmark = [pytest.mark.e2e]

KEK = "correct horse battery staple 42"


def _stored_pems(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT pem FROM signing_keys")]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAAP, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_cli_and_server_share_the_key_encryption_key(tmp_path: Path) -> None:
    db = tmp_path / "taap.db"
    url = f"sqlite:///{db}"
    env = environment(TAAP_KEY_ENCRYPTION_KEY=KEK)
    assert _cli("db", "upgrade", "--database-url", url, env=env).returncode == 0
    assert _cli("keys", "rotate", "--database-url", url, env=env).returncode == 0
    pems = _stored_pems(db)
    assert len(pems) == 2
    for pem in pems:
        assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(KeyFormatError):
            load_private_key(pem)
        assert load_private_key(pem, KEK.encode()).bits == 2048

    client = register(url, key_password=KEK.encode())
    node = start(tmp_path, url, env=env)
    try:
        headers, body = client.request()
        response = httpx.post(f"{node.base}{V2}", headers=headers, content=body, timeout=10)
        assert response.status_code == 200
        jwks = httpx.get(f"{node.base}/oauth2/v1/jwks", timeout=5).json()
        token = verify_access_token(
            response.json()["access_token"],
            keys={k["kid"]: public_key_from_jwk(k) for k in jwks["keys"]},
            issuer=f"{node.base}/oauth2/v1",
            now=time.time(),
        )
        assert token.client_id == client.client_id
    finally:
        assert node.stop() == 0


@pytest.mark.parametrize("kek", [None, "another passphrase of 30 chars"])
def test_a_server_without_the_right_key_does_not_start(tmp_path: Path, kek: str | None) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    assert (
        _cli(
            "db", "upgrade", "--database-url", url, env=environment(TAAP_KEY_ENCRYPTION_KEY=KEK)
        ).returncode
        == 0
    )
    env = environment() if kek is None else environment(TAAP_KEY_ENCRYPTION_KEY=kek)
    done = subprocess.run(
        [TAAP, "serve", "--port", "0", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(("key_format_invalid:", "configuration_error:")), done.stderr
    assert KEK not in done.stderr


def test_a_short_key_encryption_key_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    done = subprocess.run(
        [TAAP, "serve", "--port", "0", "--database-url", url],
        capture_output=True,
        text=True,
        env=environment(TAAP_KEY_ENCRYPTION_KEY="short"),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "key_encryption_key" in done.stderr
    assert "short" not in done.stderr.replace("key_encryption_key", "")
