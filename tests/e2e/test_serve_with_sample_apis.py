"""``taap serve --with-sample-apis``: the guard mounted beside the token server on one port,
sharing its replay store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_kit import Stack

from kit.clients import register_clients
from kit.processes import start_serve
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000002"


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("combined")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    clients = register_clients(database_url, {"a": (rsa_key, ("connectivity",))})
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
