"""``taap serve --with-sample-apis``: the guard mounted beside the token server on one port,
sharing its replay store; the SDK (httpx and requests) against it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
from e2e_kit import Stack

from kit.clients import register_clients
from kit.processes import start_serve
from taap.client import ClientCredentials, PopAuth, PopRequestsAuth, Secret, TokenClient
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000002"


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("combined")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    apis = ("connectivity", "sms-notification")
    clients = register_clients(database_url, {"a": (rsa_key, apis)})
    service = start_serve(folder, database_url, "--with-sample-apis", name="token-server+sample")
    running = Stack(folder, database_url, service, service, clients)
    yield running
    for client in clients.values():
        client.http.close()
    service.stop()


def test_one_port_serves_tokens_and_apis(combined: Stack) -> None:
    client = combined.clients["a"]
    access = str(client.tokens(combined.token_url)["access_token"])
    response = client.call("GET", combined.api.url + DEVICE, access)
    assert response.status_code == 200, response.text
    assert response.json()["iccid"] == "8901260000000000002"
    again = client.http.get(combined.api.url + DEVICE, headers=response.request.headers)
    assert (again.status_code, again.json()["error_code"]) == (401, "pop_replayed")


def test_sdk_httpx_and_requests_against_the_process(combined: Stack) -> None:
    client = combined.clients["a"]
    credentials = ClientCredentials(
        client_id=client.client_id, client_secret=Secret(client.secret), key=client.key
    )
    token_posts: list[str] = []
    token_http = httpx.Client(
        event_hooks={"request": [lambda request: token_posts.append(request.url.path)]}
    )
    tokens = TokenClient(combined.token_url, credentials, http=token_http)
    with httpx.Client(base_url=combined.api.url, auth=PopAuth(tokens)) as http:
        statuses = [http.get(DEVICE).status_code for _ in range(5)]
    with requests.Session() as session:
        session.auth = PopRequestsAuth(tokens)
        sent = session.post(
            combined.api.url + "/sms/v1/messages", json={"to": "+14255550100", "text": "hi"}
        )
    token_http.close()
    assert statuses == [200] * 5
    assert sent.status_code == 201, sent.text
    assert token_posts == ["/oauth2/v2/tokens"]
