"""``taap serve --with-portal`` on SQLite keeps seeing what other processes write once the
usage counters and the portal use the database: both go through the registry's own engine
(a second engine on the file in the same process used to drop the process's locks on it, and
a client registered by another process then stayed invisible: 401 client_auth_failed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from kit.clients import register_clients
from kit.processes import clean_env, start_serve, wait_until
from taap.core import generate_private_key

pytestmark = pytest.mark.e2e


def usage_rows(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT coalesce(sum(count), 0) FROM usage_counts").fetchone()[0])


def test_clients_registered_by_another_process_stay_visible(tmp_path: Path) -> None:
    database = tmp_path / "taap.db"
    url = f"sqlite:///{database}"
    env = clean_env(TAAP_KEY_REFRESH="0")
    server = start_serve(tmp_path, url, "--with-portal", env=env)
    key = generate_private_key()
    token_url = server.url + "/oauth2/v2/tokens"
    try:
        for round_ in range(3):
            # The portal's first page opens its store; each token is a usage count, flushed
            # to the file within about a second.
            assert httpx.get(server.url + "/portal/sign-in", timeout=10).status_code == 200
            made = register_clients(url, {f"c{round_}": (key, ["connectivity"])}, environ=env)
            client = made[f"c{round_}"]
            try:
                client.tokens(token_url)
            finally:
                client.http.close()
            wait_until(lambda r=round_: usage_rows(database) == r + 1, 15, "the usage flush")
    finally:
        server.stop()
