"""End to end: a real ``taap serve`` process on loopback, a client registered in its
registry, the step-1 PoP built by T-Mobile's npm builder, and the seed's curl requests sent
with real curl (SQLite file; and PostgreSQL + Redis with two workers)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_kit import TOKEN_KEYS, decode, verify_tokens

from kit.clients import create_client_with_cli
from kit.postgres import temporary_database
from kit.processes import Service, clean_env, run_taap, start_serve
from kit.wire import basic
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e, pytest.mark.node]

HERE = Path(__file__).resolve().parent
APIS = ["connectivity", "call-verification"]


def tmo_pop(builder_dir: Path, key_file: Path, pairs: list[tuple[str, str]]) -> str:
    builder = builder_dir / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js"
    result = subprocess.run(
        ["node", str(HERE / "tmo_pop_builder.js"), str(builder), str(key_file), json.dumps(pairs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def curl(url: str, headers: list[tuple[str, str]], data: str) -> tuple[int, dict[str, str], bytes]:
    """The seed's request: curl --location --request POST URL --header … --data-raw DATA."""
    if not shutil.which("curl"):
        pytest.fail("curl is not installed")
    cmd = ["curl", "--silent", "--show-error", "--location", "--request", "POST", url]
    for name, value in headers:
        cmd += ["--header", f"{name}: {value}"]
    cmd += ["--data-raw", data, "--include"]
    raw = subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return status, parsed, body


@dataclass
class Run:
    server: Service
    client_id: str
    secret: str
    key_file: Path
    builder: Path


def _flow(run: Run, demo_key: PrivateKey) -> None:
    base = run.server.url
    authorization = basic(run.client_id, run.secret)
    jwks = httpx.get(f"{base}/oauth2/v1/jwks").json()
    issuer = httpx.get(f"{base}/.well-known/openid-configuration").json()["issuer"]

    # v2: the seed's first curl request (empty body)
    pop = tmo_pop(
        run.builder,
        run.key_file,
        [
            ("Content-Type", "application/json"),
            ("Authorization", authorization),
            ("uri", "/oauth2/v2/tokens"),
            ("http-method", "POST"),
        ],
    )
    headers = [
        ("Content-Type", "application/json"),
        ("Authorization", authorization),
        ("X-Authorization", pop),
    ]
    status, response_headers, body = curl(f"{base}/oauth2/v2/tokens", headers, "")
    assert status == 200, body
    assert response_headers["cache-control"] == "no-store"
    assert response_headers["pragma"] == "no-cache"
    payload = json.loads(body)
    assert list(payload) == TOKEN_KEYS
    assert (payload["expires_in"], payload["scope"], payload["status"]) == ("3599", "", "approved")
    claims = verify_tokens(payload, jwks, issuer, time.time())
    assert claims["sub"] == claims["aud"] == run.client_id
    assert claims["apis"] == ["connectivity"]
    assert claims["cnf"] == {"jwk": dict(demo_key.public.jwk)}
    assert claims["exp"] - claims["iat"] == 3600
    _, id_claims = decode(payload["id_token"])
    assert id_claims["exp"] - id_claims["iat"] == 3600

    # the same PoP twice: one hop only
    status, _, body = curl(f"{base}/oauth2/v2/tokens", headers, "")
    assert status == 401
    assert json.loads(body)["error_code"] == "pop_replayed"

    # v6: the seed's second request (lower-case x-authorization, JSON body signed)
    data = json.dumps(
        {
            "client_id": run.client_id,
            "client_secret": run.secret,
            "scope": "response_mode",
            "grant-type": "client_credentials",
        }
    )
    pop6 = tmo_pop(
        run.builder,
        run.key_file,
        [
            ("Content-Type", "application/json"),
            ("Authorization", authorization),
            ("uri", "/oauth2/v6/tokens"),
            ("http-method", "POST"),
            ("body", data),
        ],
    )
    headers6 = [
        ("Content-Type", "application/json"),
        ("Authorization", authorization),
        ("x-authorization", pop6),
    ]
    status, _, body = curl(f"{base}/oauth2/v6/tokens", headers6, data)
    assert status == 200, body
    claims6 = verify_tokens(json.loads(body), jwks, issuer, time.time())
    assert claims6["apis"] == ["call-verification"]


@pytest.fixture
def key_file(demo_key: PrivateKey, tmp_path: Path) -> Path:
    path = tmp_path / "client-key.pem"
    path.write_bytes(demo_key.to_pem())
    return path


def test_serve_sqlite_with_curl_and_the_npm_builder(
    tmp_path: Path, demo_key: PrivateKey, tmo_builder_dir: Path, key_file: Path
) -> None:
    db = tmp_path / "data" / "taap.db"
    db.parent.mkdir()
    database_url = f"sqlite:///{db}"
    server = start_serve(tmp_path, database_url, name="serve")
    try:
        assert db.exists()
        assert (db.parent / "pepper").exists()  # first start: schema, pepper, signing key
        client_id, secret = create_client_with_cli(
            database_url, demo_key, APIS, folder=tmp_path, env=clean_env()
        )
        _flow(Run(server, client_id, secret, key_file, tmo_builder_dir), demo_key)
    finally:
        server.stop()
    audit = [json.loads(line) for line in server.log.read_text().splitlines() if '"event"' in line]
    assert [a["event"] for a in audit] == ["token_issued", "token_rejected", "token_issued"]
    assert audit[1]["error_code"] == "pop_replayed"
    assert secret not in server.log.read_text()


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    with temporary_database(postgres_url, "taap_e2e") as url:
        yield url


@pytest.mark.postgres
@pytest.mark.redis
def test_serve_postgres_redis_two_workers(
    tmp_path: Path,
    demo_key: PrivateKey,
    tmo_builder_dir: Path,
    key_file: Path,
    postgres_database: str,
    redis_url: str,
) -> None:
    env = clean_env(TAAP_PEPPER=f"e2e-pepper-{uuid.uuid4().hex}")
    server = start_serve(
        tmp_path, postgres_database, "--redis-url", redis_url, "--workers", "2", env=env
    )
    try:
        client_id, secret = create_client_with_cli(
            postgres_database, demo_key, APIS, folder=tmp_path, env=env
        )
        _flow(Run(server, client_id, secret, key_file, tmo_builder_dir), demo_key)
    finally:
        server.stop()


def test_workers_without_redis_refused(tmp_path: Path) -> None:
    database = ("--database-url", f"sqlite:///{tmp_path}/t.db")
    for result in (
        run_taap("serve", "--workers", "2", *database),
        run_taap("serve", *database, env=clean_env(TAAP_WORKERS="3")),
    ):
        assert result.returncode == 1
        assert "needs --redis-url" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one clear line
        assert "Traceback" not in result.stderr


def test_one_worker_whatever_web_concurrency_says(tmp_path: Path) -> None:
    # uvicorn reads WEB_CONCURRENCY as its default worker count; `taap serve` has its own.
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    env = clean_env(TAAP_KEY_REFRESH="0", WEB_CONCURRENCY="3")
    server = start_serve(tmp_path, database_url, name="serve", env=env)
    try:
        assert httpx.get(server.url + "/readyz").status_code == 200
    finally:
        server.stop()


def test_serve_with_sample_apis(tmp_path: Path, rsa_key: PrivateKey) -> None:
    from taap.core import build_pop_token, request_pairs

    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    server = start_serve(tmp_path, database_url, "--with-sample-apis", name="serve")
    try:
        client_id, secret = create_client_with_cli(
            database_url, rsa_key, APIS, folder=tmp_path, env=clean_env()
        )
        base_headers = [
            ("Content-Type", "application/json"),
            ("Authorization", basic(client_id, secret)),
        ]
        pop = build_pop_token(request_pairs("POST", "/oauth2/v2/tokens", base_headers), rsa_key)
        tokens = httpx.post(
            f"{server.url}/oauth2/v2/tokens",
            headers=[*base_headers, ("X-Authorization", pop)],
        )
        assert tokens.status_code == 200, tokens.text
        bearer = f"Bearer {tokens.json()['access_token']}"
        path = "/iot-connectivity/v1/devices/8901260000000000001"
        call_headers = [("Content-Type", "application/json"), ("Authorization", bearer)]
        api_pop = build_pop_token(request_pairs("GET", path, call_headers), rsa_key)
        device = httpx.get(
            f"{server.url}{path}", headers=[*call_headers, ("X-Authorization", api_pop)]
        )
        assert device.status_code == 200, device.text
        again = httpx.get(
            f"{server.url}{path}", headers=[*call_headers, ("X-Authorization", api_pop)]
        )
        assert again.status_code == 401
        assert again.json()["error_code"] == "pop_replayed"
    finally:
        server.stop()
