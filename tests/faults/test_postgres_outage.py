"""SECURITY.md §4 "DB outage (fail closed)": PostgreSQL stopped under a running ``taap serve``
→ 503 ``unavailable`` with ``Retry-After``, no token issued, readiness false; when it is back
the same process issues tokens again (no restart).

The cluster is a private one this test creates with ``initdb`` in a temporary folder on a free
port (as the ``postgres`` user when run as root), so the shared PostgreSQL is never stopped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from faults_kit import Load, PrivatePostgres, audit

from kit.clients import register_client, token_headers
from kit.processes import start_serve, wait_until
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["error"], body["error_code"]) == ("temporarily_unavailable", "unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in body
    assert "Traceback" not in response.text


def test_postgres_down_fails_closed_then_recovers(
    tmp_path: Path, private_postgres: PrivatePostgres, rsa_key: PrivateKey
) -> None:
    database_url = private_postgres.url("taap")
    env = {"TAAP_PEPPER": f"faults-{uuid.uuid4().hex}"}
    server = start_serve(tmp_path, database_url, name="serve", **env)
    client = register_client(database_url, rsa_key, ["connectivity"], environ=env)
    load = None
    try:
        token_url = server.url + "/oauth2/v2/tokens"
        http = client.http
        assert client.token_response(token_url).status_code == 200
        load = Load(token_url, client).start()
        wait_until(lambda: len(load.answers) >= 5, 10, "load before the outage")

        private_postgres.stop()

        started = time.monotonic()
        for _ in range(3):
            _assert_unavailable(client.token_response(token_url))
        # Fail fast: a refused connection is not a 5 s connect timeout per request.
        assert time.monotonic() - started < 10
        ready = http.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert "database" in ready.json()["error_description"]
        # Wrong credentials cannot be told apart from right ones while the registry is away:
        # the lookup fails, so the answer is 503, never 401 "unknown client".
        wrong = token_headers(client.client_id, "not-the-secret", client.key)
        _assert_unavailable(http.post(token_url, headers=wrong))
        assert server.proc.poll() is None
        during = len(load.answers)
        time.sleep(0.5)
        assert load.answers[during:]
        assert set(load.answers[during:]) == {(503, "unavailable")}
        events = audit(server)
        assert {a["error_code"] for a in events if a["event"] == "token_rejected"} == {
            "unavailable"
        }

        private_postgres.start()

        wait_until(
            lambda: client.token_response(token_url).status_code == 200,
            20,
            "token endpoint after PostgreSQL came back",
        )
        wait_until(lambda: load.answers[-1] == (200, None), 20, "load after the outage")
        load.stop()
        # Only 200 and 503 were ever answered, and every 200 is exactly one audited issuance.
        assert set(load.answers) == {(200, None), (503, "unavailable")}
        issued = [a for a in audit(server) if a["event"] == "token_issued"]
        assert len(issued) == 1 + len(load.tokens) + 1  # before, the load, the recovery probe
        assert http.get(server.url + "/readyz").status_code == 200
        refused = http.post(token_url, headers=token_headers(client.client_id, "x", client.key))
        assert (refused.status_code, refused.json()["error_code"]) == (401, "client_auth_failed")
        assert server.proc.poll() is None
    finally:
        if load is not None:
            load.stop()
        client.http.close()
        server.stop()
