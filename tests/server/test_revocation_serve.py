"""Revocation and introspection against a real ``taap serve`` process, over HTTP on loopback, on
a SQLite file and on PostgreSQL: operators change the registry from the CLI while the server
runs, clients and resource servers build their requests by hand."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from revocation_kit import FEED, INTROSPECT, REVOKE, introspect_request, revoke_request

from kit.clients import Client, register_clients, with_registry
from kit.postgres import temporary_database
from kit.processes import Service, clean_env, start_serve, taap_ok
from kit.wire import basic, jwt_part
from taap.core import PrivateKey
from taap.server.registry.port import Registry
from taap.server.tokens.minting import id_token_jti

pytestmark = [pytest.mark.e2e]

APIS = ["connectivity", "sms-notification"]


@dataclass
class Served:
    server: Service
    database_url: str
    env: dict[str, str]
    folder: Path
    rs: tuple[str, str]
    http: httpx.Client
    clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def taap(self, *args: str) -> str:
        return taap_ok(*args, "--database-url", self.database_url, env=self.env, cwd=self.folder)

    def client(self, key: PrivateKey, apis: list[str] | None = None) -> Client:
        name = f"c-{uuid.uuid4().hex[:8]}"
        made = register_clients(self.database_url, {name: (key, apis or APIS)}, environ=self.env)
        self.clients.append(made[name])  # their connections close with the server
        return made[name]

    def tokens(self, client: Client) -> dict[str, Any]:
        return client.tokens(self.url + "/oauth2/v2/tokens")

    def revoke(self, client: Client, token: str, **kwargs: Any) -> httpx.Response:
        headers, body = revoke_request(client.client_id, client.secret, client.key, token, **kwargs)
        return self.http.post(self.url + REVOKE, headers=headers, content=body)

    def introspect(self, token: str, creds: tuple[str, str] | None = None) -> httpx.Response:
        headers, body = introspect_request(*(creds or self.rs), token)
        return self.http.post(self.url + INTROSPECT, headers=headers, content=body)

    def active(self, token: str) -> bool:
        response = self.introspect(token)
        assert response.status_code == 200, response.text
        return bool(response.json()["active"])

    def feed(self) -> list[list[Any]]:
        response = self.http.get(self.url + FEED)
        assert response.status_code == 200, response.text
        entries: list[list[Any]] = response.json()["entries"]
        return entries


def _serve(folder: Path, database_url: str, env: dict[str, str]) -> Iterator[Served]:
    server = start_serve(folder, database_url, env=env)
    try:
        rs = json.loads(
            taap_ok(
                "resource-servers",
                *("create", "--name", "orders", "--json", "--database-url", database_url),
                env=env,
                cwd=folder,
            )
        )
        with httpx.Client(timeout=15) as http:
            served = Served(server, database_url, env, folder, (rs["id"], rs["secret"]), http)
            yield served
            for client in served.clients:
                client.http.close()
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"revocation-{request.param}")
    # Failed logins on purpose in several tests: keep the address's bucket out of the way.
    env = clean_env(TAAP_KEY_REFRESH="0", TAAP_RATE_ADDRESS="100000/1")
    if request.param == "sqlite":
        yield from _serve(folder, f"sqlite:///{folder / 'taap.db'}", env)
        return
    env["TAAP_PEPPER"] = f"revocation-pepper-{uuid.uuid4().hex}"
    with temporary_database(request.getfixturevalue("postgres_url"), "taap_revoke") as url:
        yield from _serve(folder, url, env)


def test_a_revoked_token_is_inactive_at_once_with_its_id_token(
    served: Served, rsa_key: PrivateKey
) -> None:
    client = served.client(rsa_key)
    tokens, other = served.tokens(client), served.tokens(client)
    assert served.active(tokens["access_token"])
    response = served.revoke(client, tokens["access_token"])
    assert response.status_code == 200
    assert response.json() == {}
    assert not served.active(tokens["access_token"])
    assert served.active(other["access_token"])
    jti = jwt_part(tokens["access_token"], 1)["jti"]
    id_jti = jwt_part(tokens["id_token"], 1)["jti"]
    assert id_jti == id_token_jti(jti)
    mine = {row[3] for row in served.feed() if row[2] == client.client_id}
    assert mine == {jti, id_jti}


def test_another_clients_token_stays_live(
    served: Served, rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    victim, intruder = served.client(rsa_key), served.client(other_key)
    token = served.tokens(victim)["access_token"]
    response = served.revoke(intruder, token)
    assert (response.status_code, response.json()) == (200, {})
    assert served.active(token)
    assert all(row[2] != victim.client_id for row in served.feed())


def test_refused_revocations_leave_the_token_live(served: Served, rsa_key: PrivateKey) -> None:
    client = served.client(rsa_key)
    token = served.tokens(client)["access_token"]
    headers, body = revoke_request(client.client_id, client.secret, client.key, token)
    url = served.url + REVOKE
    no_pop = {k: v for k, v in headers.items() if k != "X-Authorization"}
    bad_basic = headers | {"Authorization": basic(client.client_id, "not-the-secret")}
    for sent, code in ((no_pop, "pop_missing"), (bad_basic, "client_auth_failed")):
        response = served.http.post(url, headers=sent, content=body)
        assert (response.status_code, response.json()["error_code"]) == (401, code)
        assert served.active(token)
    assert all(row[2] != client.client_id for row in served.feed())
    # the request itself goes through once; sent again, its PoP is spent and nothing is added
    assert served.http.post(url, headers=headers, content=body).status_code == 200
    assert not served.active(token)
    rows = served.feed()
    replayed = served.http.post(url, headers=headers, content=body)
    assert (replayed.status_code, replayed.json()["error_code"]) == (401, "pop_replayed")
    assert served.feed() == rows


def test_a_mebibyte_token_and_foreign_bodies_are_refused_quickly(
    served: Served, rsa_key: PrivateKey
) -> None:
    client = served.client(rsa_key)
    huge = "x" * (1024 * 1024)
    started = time.monotonic()
    headers, body = revoke_request(client.client_id, client.secret, client.key, huge)
    response = served.http.post(served.url + REVOKE, headers=headers, content=body)
    assert (response.status_code, response.json()["error_code"]) == (413, "body_too_large")
    response = served.introspect(huge)
    assert response.status_code == 413
    assert time.monotonic() - started < 10  # generous: the point is "not parsed"
    part = b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n--b--\r\n'
    for content_type, content in (
        ("text/plain", b"token=abc"),
        ("multipart/form-data; boundary=b", part),
        ("application/xml", b"<token>abc</token>"),
    ):
        headers, body = revoke_request(
            client.client_id, client.secret, client.key, "", body=content, content_type=content_type
        )
        response = served.http.post(served.url + REVOKE, headers=headers, content=body)
        assert (response.status_code, response.json()["error_code"]) == (
            415,
            "content_type_unsupported",
        )


def test_introspection_answers_exactly_and_only_resource_servers(
    served: Served, rsa_key: PrivateKey
) -> None:
    client = served.client(rsa_key)
    tokens = served.tokens(client)
    claims = jwt_part(tokens["access_token"], 1)
    assert served.introspect(tokens["access_token"]).json() == {
        "active": True,
        "client_id": client.client_id,
        "sub": client.client_id,
        "iss": served.url + "/oauth2/v1",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
        "token_type": "Bearer",
        "apis": APIS,
        "cnf": {"jkt": rsa_key.thumbprint},
    }
    refused = served.introspect(tokens["access_token"], (client.client_id, client.secret))
    assert (refused.status_code, refused.json()["error_code"]) == (401, "client_auth_failed")
    assert refused.headers["www-authenticate"] == 'Basic realm="taap"'
    assert served.introspect(tokens["id_token"]).json() == {"active": False}


def test_operator_changes_reach_introspection(served: Served, rsa_key: PrivateKey) -> None:
    client = served.client(rsa_key)
    token = served.tokens(client)["access_token"]
    served.taap("clients", "unsubscribe", client.client_id, "sms-notification")
    assert served.introspect(token).json()["apis"] == ["connectivity"]
    served.taap("clients", "disable", client.client_id)
    assert not served.active(token)


def test_a_token_issued_right_after_a_cutoff_is_live(served: Served, rsa_key: PrivateKey) -> None:
    client = served.client(rsa_key)

    async def cut(registry: Registry) -> int:
        return await registry.revoke_client_tokens(client.client_id)

    cutoff = with_registry(served.database_url, cut, environ=served.env)
    tokens = served.tokens(client)
    claims = jwt_part(tokens["access_token"], 1)
    assert claims["iat"] >= cutoff
    assert jwt_part(tokens["id_token"], 1)["iat"] == claims["iat"]
    assert served.active(tokens["access_token"])
