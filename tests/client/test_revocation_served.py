"""The SDK against a real ``taap serve --with-sample-apis`` process: revocation, introspection
and the re-token rules of a call when an operator revokes, disables or changes subscriptions
with the ``taap`` CLI (another process, same database).

The guard's bound is 1 s here (``TAAP_REVOCATION_MAX_AGE=1``); each case waits a little longer
than that after a change, so the first call after the wait is judged on a state that has it.
Every answer the SDK received (token server and API) is recorded through httpx event hooks, so
the tests see each retry and each token request, not only the final answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from kit.clients import Client, register_clients
from kit.processes import Service, start_serve, taap_ok
from taap.client import ClientCredentials, PopAuth, Secret, TokenClient, aintrospect, introspect
from taap.client.revocation import INTROSPECTION_PATH, server_endpoint
from taap.core import PrivateKey, jwk_thumbprint
from taap.errors import ClientAuthError

pytestmark = pytest.mark.e2e

MAX_AGE = 1.0
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
SMS = "/sms/v1/messages"
TOKENS = "/oauth2/v2/tokens"
BOTH = ("connectivity", "sms-notification")
NAMES = ("own", "elsewhere", "introspected", "disabled", "subscriptions")
LIVE_FIELDS = {
    "active",
    "client_id",
    "sub",
    "iss",
    "exp",
    "iat",
    "jti",
    "token_type",
    "apis",
    "cnf",
}


def past_the_bound(seconds: float = MAX_AGE + 0.1) -> None:
    time.sleep(seconds)


@dataclass
class Server:
    service: Service
    folder: Path
    database_url: str
    clients: dict[str, Client]
    rs_id: str
    rs_secret: str

    @property
    def url(self) -> str:
        return self.service.url

    def taap(self, *args: str) -> str:
        return taap_ok(*args, "--database-url", self.database_url, cwd=self.folder)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("revocation-sdk")
    database = f"sqlite:///{folder / 'taap.db'}"
    clients = register_clients(database, {name: (rsa_key, BOTH) for name in NAMES})
    service = start_serve(
        folder, database, "--with-sample-apis", TAAP_REVOCATION_MAX_AGE=str(MAX_AGE)
    )
    made = taap_ok(
        "resource-servers", "create", "--name", "sdk tests", "--json",
        "--database-url", database, cwd=folder,
    )  # fmt: skip
    rs = json.loads(made)
    yield Server(service, folder, database, clients, rs["id"], rs["secret"])
    for client in clients.values():
        client.http.close()
    service.stop()


@dataclass
class Seen:
    """``(path, status, error_code)`` of every answer, token server's and API's, in order."""

    answers: list[tuple[str, int, str]] = field(default_factory=list)

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        code = response.json().get("error_code", "") if response.status_code >= 400 else ""
        self.answers.append((response.request.url.path, response.status_code, code))

    def take(self) -> list[tuple[str, int, str]]:
        taken, self.answers = self.answers, []
        return taken


@dataclass
class Sdk:
    tokens: TokenClient
    http: httpx.Client
    seen: Seen

    @property
    def auth(self) -> PopAuth:
        auth = self.http.auth
        assert isinstance(auth, PopAuth)
        return auth


@pytest.fixture
def make_sdk(server: Server) -> Iterator[Callable[..., Sdk]]:
    """A PopAuth for one registered client; its HTTP clients are closed after the test."""
    opened: list[httpx.Client] = []

    def make(name: str, *, resubscribe_age: float = 5.0) -> Sdk:
        seen = Seen()
        client = server.clients[name]
        credentials = ClientCredentials(
            client_id=client.client_id, client_secret=Secret(client.secret), key=client.key
        )
        token_http = httpx.Client(event_hooks={"response": [seen]})
        tokens = TokenClient(
            server.url + TOKENS, credentials, http=token_http, resubscribe_age=resubscribe_age
        )
        http = httpx.Client(
            base_url=server.url, auth=PopAuth(tokens), event_hooks={"response": [seen]}
        )
        opened.extend([token_http, http])
        return Sdk(tokens, http, seen)

    yield make
    for http in opened:
        http.close()


def test_revoking_the_cached_token_then_a_call_takes_a_new_one(
    server: Server, make_sdk: Callable[..., Sdk]
) -> None:
    one = make_sdk("own")
    assert one.http.get(DEVICE).status_code == 200
    old = one.tokens.cache.held()
    assert old is not None
    assert one.auth.revoke() is True
    assert one.tokens.cache.held() is None
    past_the_bound()
    refused = server.clients["own"].call("GET", server.url + DEVICE, old.access_token)
    assert (refused.status_code, refused.json()["error_code"]) == (401, "token_revoked")
    one.seen.take()
    assert one.http.get(DEVICE).status_code == 200
    assert one.seen.take() == [(TOKENS, 200, ""), (DEVICE, 200, "")]  # no 401 first
    new = one.tokens.cache.held()
    assert new is not None
    assert new.access_token != old.access_token
    assert one.auth.revoke() is True  # and that one can be revoked too


def test_a_token_revoked_elsewhere_is_replaced_once(
    server: Server, make_sdk: Callable[..., Sdk]
) -> None:
    one = make_sdk("elsewhere")
    assert one.http.get(DEVICE).status_code == 200
    cached = one.tokens.cache.held()
    assert cached is not None
    # Another process holding the same credentials revokes the token this one caches.
    elsewhere = TokenClient(server.url + TOKENS, one.tokens.credentials)
    assert elsewhere.revoke(cached.access_token) is True
    elsewhere.close()
    past_the_bound()
    one.seen.take()
    answer = one.http.get(DEVICE)
    assert answer.status_code == 200, answer.text
    assert one.seen.take() == [
        (DEVICE, 401, "token_revoked"),
        (TOKENS, 200, ""),
        (DEVICE, 200, ""),
    ]
    assert [r.status_code for r in answer.history] == [401]


async def test_revoke_then_introspection_says_inactive(
    server: Server, make_sdk: Callable[..., Sdk], rsa_key: PrivateKey
) -> None:
    one = make_sdk("introspected")
    token = await one.tokens.afetch()
    url = server.url + "/oauth2/v1/introspect"
    ask = {"resource_server_id": server.rs_id, "secret": server.rs_secret}
    live = introspect(url, token.access_token, **ask)  # type: ignore[arg-type]
    assert set(live) >= LIVE_FIELDS
    assert live["active"] is True
    assert live["client_id"] == one.tokens.credentials.client_id
    assert live["cnf"] == {"jkt": jwk_thumbprint(rsa_key.public.jwk)}
    assert sorted(live["apis"]) == sorted(BOTH)
    assert await one.auth.arevoke() is True
    past_the_bound()
    assert introspect(url, token.access_token, **ask) == {"active": False}  # type: ignore[arg-type]
    id_token = token.id_token or ""
    assert await aintrospect(url, id_token, **ask) == {"active": False}  # type: ignore[arg-type]
    with pytest.raises(ClientAuthError):
        introspect(url, token.access_token, resource_server_id=server.rs_id, secret="wrong")
    await one.tokens.aclose()  # the async client it made for afetch


def test_a_disabled_client_gets_client_auth_failed_after_one_try(
    server: Server, make_sdk: Callable[..., Sdk]
) -> None:
    one = make_sdk("disabled")
    assert one.http.get(DEVICE).status_code == 200
    server.taap("clients", "disable", server.clients["disabled"].client_id)
    past_the_bound()
    one.seen.take()
    with pytest.raises(ClientAuthError) as caught:
        one.http.get(DEVICE)
    assert caught.value.error_code == "client_auth_failed"
    assert one.seen.take() == [(DEVICE, 401, "token_revoked"), (TOKENS, 401, "client_auth_failed")]


def test_unsubscribe_then_subscribe_needs_no_restart(
    server: Server, make_sdk: Callable[..., Sdk]
) -> None:
    """One new token per 403 when the token is old enough (2 s here), never two per call."""
    client_id = server.clients["subscriptions"].client_id
    one = make_sdk("subscriptions", resubscribe_age=2.0)
    assert one.http.get(DEVICE).status_code == 200
    server.taap("clients", "unsubscribe", client_id, "connectivity")
    past_the_bound(2.1)  # the guard knows, and the cached token is 2 s old
    one.seen.take()
    assert one.http.get(DEVICE).status_code == 403
    refused = (DEVICE, 403, "not_subscribed")
    assert one.seen.take() == [refused, (TOKENS, 200, ""), refused]  # the new one lacks it too
    assert one.http.get(DEVICE).status_code == 403
    assert one.seen.take() == [refused]  # a token that young is not replaced
    sms = one.http.post(SMS, content=b'{"to": "+14255550100", "text": "hi"}')
    assert sms.status_code == 201, sms.text
    server.taap("clients", "subscribe", client_id, "connectivity")
    past_the_bound(2.1)
    one.seen.take()
    assert one.http.get(DEVICE).status_code == 200
    assert one.seen.take() == [refused, (TOKENS, 200, ""), (DEVICE, 200, "")]


@pytest.mark.parametrize("version", ["v2", "v6"])
def test_the_derived_urls_are_the_advertised_ones(
    server: Server, make_sdk: Callable[..., Sdk], version: str
) -> None:
    discovery = httpx.get(server.url + "/.well-known/openid-configuration").json()
    token_url = f"{server.url}/oauth2/{version}/tokens"
    tokens = TokenClient(token_url, make_sdk("own").tokens.credentials)
    assert tokens.revocation_url == discovery["revocation_endpoint"]
    assert server_endpoint(token_url, INTROSPECTION_PATH) == discovery["introspection_endpoint"]
