"""newman runs the exported collection against a real ``taap serve --with-sample-apis``: every
request signs a fresh PoP, for v2 and v6, twice in a row, and when the token must be fetched."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from postman_kit import export, run_newman

from kit.clients import create_client_with_cli
from kit.processes import Service, clean_env, start_serve
from taap.core import PrivateKey, generate_private_key
from taap.postman import COLLECTION_FILE, ENVIRONMENT_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.node]

PRODUCTS = ["connectivity", "sms-notification", "call-verification"]
STEPS34 = "Steps 3\u20134: API calls"


@dataclass
class Live:
    server: Service
    client_id: str
    secret: str
    key: PrivateKey
    key_file: Path
    folder: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("postman-live")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    server = start_serve(folder, database_url, "--with-sample-apis", name="serve")
    try:
        key = generate_private_key(2048)
        key_file = folder / "client.pem"
        key_file.write_bytes(key.to_pem(b"key-password"))  # the export decrypts it
        client_id, secret = create_client_with_cli(
            database_url, key, PRODUCTS, folder=folder, env=clean_env()
        )
        yield Live(server, client_id, secret, key, key_file, folder)
    finally:
        server.stop()


def _export(live: Live, out: Path, *products: str) -> str:
    options = [option for product in products for option in ("--product", product)]
    return export(
        out,
        "--token-url",
        f"{live.server.url}/oauth2/v2/tokens",
        "--client-id",
        live.client_id,
        "--key",
        str(live.key_file),
        "--password-env",
        "KEY_PASSWORD",
        "--client-secret-env",
        "CLIENT_SECRET",
        *options,
        env=clean_env(CLIENT_SECRET=live.secret, KEY_PASSWORD="key-password"),
    )


def test_every_request_passes_twice_in_a_row(live: Live, newman: Path) -> None:
    out = live.folder / "all"
    said = _export(live, out, *PRODUCTS)
    assert "0600" in said
    assert "client_secret, private_key" in said
    assert stat.S_IMODE((out / ENVIRONMENT_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / COLLECTION_FILE).stat().st_mode) == 0o644
    collection_text = (out / COLLECTION_FILE).read_text()
    assert live.secret not in collection_text
    assert "PRIVATE KEY-----\\nMII" not in collection_text
    assert "PRIVATE KEY-----\\nMII" in (out / ENVIRONMENT_FILE).read_text()

    for _ in range(2):
        run = run_newman(newman, out)
        assert run.returncode == 0, run.output
        assert run.failures == [], run.output
        assert run.sent() == [
            "v2 token (connectivity, sms-notification)",
            "v6 token (call-verification)",
            "Device lookup (connectivity)",
            "Send SMS (sms-notification)",
        ]
        assertions = [a for e in run.executions for a in e.get("assertions", [])]
        assert len(assertions) == 6
        assert not any(a.get("error") for a in assertions)
        codes = [e["response"]["code"] for e in run.executions]
        assert codes == [200, 200, 200, 201]
    log = live.server.log.read_text()
    assert "pop_replayed" not in log
    assert live.secret not in log


def test_api_calls_alone_fetch_their_token(live: Live, newman: Path) -> None:
    out = live.folder / "api-only"
    _export(live, out, "connectivity", "sms-notification")
    seen = len(live.server.log.read_text())
    run = run_newman(newman, out, options=["--folder", STEPS34])
    assert run.returncode == 0, run.output
    assert run.failures == [], run.output
    # One token request, made by the first call's pre-request script; the second reuses it.
    assert run.output.count("taap: fetching a v2 access token") == 1, run.output
    events = [
        json.loads(line)["event"]
        for line in live.server.log.read_text()[seen:].splitlines()
        if '"event"' in line
    ]
    assert events == ["token_issued", "api_call_accepted", "api_call_accepted"], events
