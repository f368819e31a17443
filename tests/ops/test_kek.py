"""Private signing keys at rest under ``TAAP_KEY_ENCRYPTION_KEY``: the registry CLI and
``taap serve`` write and read them with the same key; the stored PEM is encrypted; a server
without the key, or with another one, stops at start-up with one line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from kit.clients import V2_TOKENS, register_client
from kit.processes import clean_env, run_taap, start_serve
from taap.core import PrivateKey, load_private_key, public_key_from_jwk
from taap.core.tokens import verify_access_token
from taap.errors import KeyFormatError

pytestmark = [pytest.mark.e2e]

KEK = "correct horse battery staple 42"


def _stored_pems(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT pem FROM signing_keys")]


def _upgrade(url: str, kek: str | None) -> None:
    """Create the registry (schema + first signing key) with the CLI, under ``kek``."""
    env = clean_env() if kek is None else clean_env(TAAP_KEY_ENCRYPTION_KEY=kek)
    done = run_taap("db", "upgrade", "--database-url", url, env=env)
    assert done.returncode == 0, done.stderr


def test_cli_and_server_share_the_key_encryption_key(tmp_path: Path, rsa_key: PrivateKey) -> None:
    db = tmp_path / "taap.db"
    url = f"sqlite:///{db}"
    env = clean_env(TAAP_KEY_ENCRYPTION_KEY=KEK)
    _upgrade(url, KEK)
    assert run_taap("keys", "rotate", "--database-url", url, env=env).returncode == 0
    pems = _stored_pems(db)
    assert len(pems) == 2
    for pem in pems:
        assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(KeyFormatError):
            load_private_key(pem)
        assert load_private_key(pem, KEK.encode()).bits == 2048

    _serve_and_issue(tmp_path, url, env, rsa_key)


def _serve_and_issue(tmp_path: Path, url: str, env: dict[str, str], key: PrivateKey) -> set[str]:
    """Start ``taap serve``, get a token that verifies against its JWKS; the published kids."""
    client = register_client(url, key, ["connectivity"], "ops", key_password=KEK.encode())
    node = start_serve(tmp_path, url, name="serve", env=env)
    try:
        response = client.http.post(f"{node.url}{V2_TOKENS}", headers=client.token_headers())
        assert response.status_code == 200
        jwks = httpx.get(f"{node.url}/oauth2/v1/jwks", timeout=5).json()
        token = verify_access_token(
            response.json()["access_token"],
            keys={k["kid"]: public_key_from_jwk(k) for k in jwks["keys"]},
            issuer=f"{node.url}/oauth2/v1",
            now=time.time(),
        )
        assert token.client_id == client.client_id
        return {k["kid"] for k in jwks["keys"]}
    finally:
        client.http.close()
        assert node.stop() == 0


@pytest.mark.parametrize("kek", [None, "another passphrase of 30 chars"])
def test_a_server_without_the_right_key_does_not_start(tmp_path: Path, kek: str | None) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    _upgrade(url, KEK)
    env = clean_env() if kek is None else clean_env(TAAP_KEY_ENCRYPTION_KEY=kek)
    done = run_taap("serve", "--port", "0", "--database-url", url, env=env, cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(("key_format_invalid:", "configuration_error:")), done.stderr
    assert KEK not in done.stderr


def test_a_short_key_encryption_key_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'taap.db'}"
    env = clean_env(TAAP_KEY_ENCRYPTION_KEY="short")
    done = run_taap("serve", "--port", "0", "--database-url", url, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "key_encryption_key" in done.stderr
    assert "short" not in done.stderr.replace("key_encryption_key", "")


def _kids_and_publics(db: Path, password: str | None) -> dict[str, str]:
    secret = password.encode() if password else None
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kid, pem FROM signing_keys").fetchall()
    return {kid: load_private_key(pem, secret).thumbprint for kid, pem in rows}


def test_keys_stored_in_the_clear_are_encrypted_later(tmp_path: Path, rsa_key: PrivateKey) -> None:
    # An install that ran without a key-encryption key sets one: `taap keys encrypt`.
    db = tmp_path / "taap.db"
    url = f"sqlite:///{db}"
    plain = clean_env()
    _upgrade(url, None)
    assert run_taap("keys", "rotate", "--database-url", url, env=plain).returncode == 0
    before = _kids_and_publics(db, None)
    assert len(before) == 2

    env = clean_env(TAAP_KEY_ENCRYPTION_KEY=KEK)
    done = run_taap("keys", "encrypt", "--database-url", url, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 of 2 signing keys written under the current key-encryption key"
    assert all(p.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for p in _stored_pems(db))
    assert _kids_and_publics(db, KEK) == before  # the same keys, the same kids
    again = run_taap("keys", "encrypt", "--database-url", url, env=env)
    assert again.stdout.strip().startswith("0 of 2 ")  # idempotent

    assert _serve_and_issue(tmp_path, url, env, rsa_key) == set(before)


def test_moving_keys_to_a_new_key_encryption_key(tmp_path: Path) -> None:
    db = tmp_path / "taap.db"
    url = f"sqlite:///{db}"
    new = "a brand new passphrase, 2026-12"
    _upgrade(url, KEK)
    before = _kids_and_publics(db, KEK)
    env = clean_env(TAAP_KEY_ENCRYPTION_KEY=new, TAAP_OLD_KEK=KEK)
    done = run_taap(
        "keys", "encrypt", "--previous-key-env", "TAAP_OLD_KEK", "--database-url", url, env=env
    )
    assert done.returncode == 0, done.stderr
    assert _kids_and_publics(db, new) == before
    with pytest.raises(KeyFormatError):
        _kids_and_publics(db, KEK)
    assert KEK not in done.stdout + done.stderr
    assert new not in done.stdout + done.stderr


def test_a_key_under_an_unknown_key_changes_nothing(tmp_path: Path) -> None:
    # One plain key and one under KEK; the current key is another and no previous one is
    # named: refused, and the plain key is not rewritten either (one transaction).
    db = tmp_path / "taap.db"
    url = f"sqlite:///{db}"
    _upgrade(url, KEK)
    assert run_taap("keys", "rotate", "--database-url", url, env=clean_env()).returncode == 0
    stored = _stored_pems(db)
    assert sorted(p.startswith("-----BEGIN ENCRYPTED") for p in stored) == [False, True]
    other = "yet another passphrase of 30 c"
    done = run_taap(
        "keys", "encrypt", "--database-url", url, env=clean_env(TAAP_KEY_ENCRYPTION_KEY=other)
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("configuration_error: signing key ")
    assert "--previous-key-env" in last
    assert KEK not in done.stderr
    assert other not in done.stderr
    assert _stored_pems(db) == stored

    unset = run_taap(
        "keys",
        "encrypt",
        "--previous-key-env",
        "TAAP_NOT_SET",
        "--database-url",
        url,
        env=clean_env(TAAP_KEY_ENCRYPTION_KEY=other),
    )
    assert unset.returncode == 2
    assert "TAAP_NOT_SET is empty or unset" in unset.stderr
    no_key = run_taap("keys", "encrypt", "--database-url", url, env=clean_env())
    assert no_key.returncode == 1
    assert "set TAAP_KEY_ENCRYPTION_KEY" in no_key.stderr
    assert _stored_pems(db) == stored
