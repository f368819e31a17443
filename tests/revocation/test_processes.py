"""Live authorization across real processes: an operator's change made with the ``taap`` CLI
(another process, same database) is seen by every guard within ``TAAP_REVOCATION_MAX_AGE``.

- the guard that ``taap serve --with-sample-apis`` mounts reads the registry's revocation log
  itself (no HTTP hop);
- a separate ``taap sample-api`` reads the token server's feed, and fails closed (503) when
  the token server is gone for longer than the bound, until it is back.

The bound is 1 s here (``TAAP_REVOCATION_MAX_AGE=1``) to keep the tests short. Each case waits
a little longer than the bound after the change: a request arriving later than that is answered
only from a state fetched after the change (docs/guard.md, "Live authorization"), so the first
request after the wait must already be refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit.clients import Client, register_clients
from kit.processes import (
    TAAP,
    Service,
    clean_env,
    free_port,
    need_service,
    start_sample_api,
    start_service,
    taap_ok,
)
from taap.core import PrivateKey
from taap.core.jws import parse_compact

pytestmark = pytest.mark.e2e

MAX_AGE = "1"
DEVICE = "/iot-connectivity/v1/devices/8901260000000000003"
SMS = "/sms/v1/messages"
SMS_BODY = b'{"to": "+14255550100", "text": "hi"}'
BOTH = ("connectivity", "sms-notification")
FEED = "/oauth2/v1/revocations"


def past_the_bound() -> None:
    time.sleep(float(MAX_AGE) + 0.1)


def jti_of(token: str) -> str:
    jti = parse_compact(token, max_bytes=8192, max_header_bytes=1024).payload["jti"]
    assert isinstance(jti, str)
    return jti


def answer(response: httpx.Response) -> tuple[int, str]:
    if response.status_code < 400:
        return response.status_code, ""
    return response.status_code, str(response.json().get("error_code"))


class Node:
    """A token server on a fixed port over one SQLite file, which a test may kill and restart."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.args = args
        self.database_url = f"sqlite:///{folder / 'taap.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service: Service | None = None
        self.clients: dict[str, Client] = {}

    def start(self) -> None:
        port, database = str(self.port), self.database_url
        self.service = start_service(
            "token-server",
            [TAAP, "serve", "--port", port, "--database-url", database, *self.args],
            url=self.url,
            env=clean_env(TAAP_KEY_REFRESH="0", TAAP_REVOCATION_MAX_AGE=MAX_AGE),
            folder=self.folder,
            cwd=self.folder,
            probe="/readyz",
        )

    def kill(self) -> None:
        assert self.service is not None
        self.service.proc.kill()
        self.service.proc.wait(10)

    def stop(self) -> None:
        for client in self.clients.values():
            client.http.close()
        if self.service is not None:
            self.service.stop()

    def token(self, client: Client) -> str:
        return str(client.tokens(self.url + "/oauth2/v2/tokens")["access_token"])

    def taap(self, *args: str) -> str:
        return taap_ok(*args, "--database-url", self.database_url, cwd=self.folder)


def register(folder: Path, key: PrivateKey, *names: str) -> dict[str, Client]:
    wanted = {name: (key, BOTH) for name in names}
    return register_clients(f"sqlite:///{folder / 'taap.db'}", wanted)


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Node]:
    """``taap serve --with-sample-apis``: the guard in the token server's process."""
    folder = tmp_path_factory.mktemp("combined")
    node = Node(folder, "--with-sample-apis")
    node.clients = register(folder, rsa_key, "jti", "all", "disabled", "unsubscribed")
    node.start()
    yield node
    node.stop()


def test_one_revoked_token_from_the_cli(combined: Node) -> None:
    client = combined.clients["jti"]
    token, other = combined.token(client), combined.token(client)
    url = combined.url + DEVICE
    assert answer(client.call("GET", url, token)) == (200, "")
    combined.taap("clients", "revoke-tokens", client.client_id, "--jti", jti_of(token))
    past_the_bound()
    assert answer(client.call("GET", url, token)) == (401, "token_revoked")
    assert answer(client.call("GET", url, other)) == (200, "")


def test_every_token_revoked_then_a_new_one_works(combined: Node) -> None:
    client = combined.clients["all"]
    token = combined.token(client)
    out = json.loads(combined.taap("clients", "revoke-tokens", client.client_id, "--json"))
    past_the_bound()
    assert answer(client.call("GET", combined.url + DEVICE, token)) == (401, "token_revoked")
    # A token issued after the cutoff is live; cutoffs are whole seconds.
    while time.time() < out["not_before"]:
        time.sleep(0.05)
    fresh = combined.token(client)
    assert answer(client.call("GET", combined.url + DEVICE, fresh)) == (200, "")


def test_a_disabled_clients_tokens_are_refused(combined: Node) -> None:
    client = combined.clients["disabled"]
    token = combined.token(client)
    combined.taap("clients", "disable", client.client_id)
    past_the_bound()
    assert answer(client.call("GET", combined.url + DEVICE, token)) == (401, "token_revoked")
    body = SMS_BODY
    assert answer(client.call("POST", combined.url + SMS, token, body)) == (401, "token_revoked")


def test_an_unsubscribed_product_is_refused_the_other_works(combined: Node) -> None:
    client = combined.clients["unsubscribed"]
    token = combined.token(client)
    combined.taap("clients", "unsubscribe", client.client_id, "connectivity")
    past_the_bound()
    assert answer(client.call("GET", combined.url + DEVICE, token)) == (403, "not_subscribed")
    assert answer(client.call("POST", combined.url + SMS, token, SMS_BODY)) == (201, "")


@pytest.fixture(scope="module")
def separate(
    tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey
) -> Iterator[tuple[Node, Service]]:
    """``taap serve`` and a ``taap sample-api`` process that trusts it."""
    folder = tmp_path_factory.mktemp("separate")
    node = Node(folder)
    node.clients = register(folder, rsa_key, "jti", "outage")
    node.start()
    feed = httpx.get(node.url + FEED, params={"after": "0", "limit": "1"})
    if feed.status_code == 404:
        node.stop()
        need_service("the token server's revocation feed", f"GET {FEED} answers 404")
    api = start_sample_api(folder, node.url, TAAP_REVOCATION_MAX_AGE=MAX_AGE)
    yield node, api
    api.stop()
    node.stop()


def test_a_separate_guard_sees_a_revocation(separate: tuple[Node, Service]) -> None:
    node, api = separate
    client = node.clients["jti"]
    token, other = node.token(client), node.token(client)
    assert answer(client.call("GET", api.url + DEVICE, token)) == (200, "")
    node.taap("clients", "revoke-tokens", client.client_id, "--jti", jti_of(token))
    past_the_bound()
    assert answer(client.call("GET", api.url + DEVICE, token)) == (401, "token_revoked")
    assert answer(client.call("GET", api.url + DEVICE, other)) == (200, "")


def test_a_separate_guard_fails_closed_while_the_token_server_is_down(
    separate: tuple[Node, Service],
) -> None:
    node, api = separate
    client = node.clients["outage"]
    token = node.token(client)
    assert answer(client.call("GET", api.url + DEVICE, token)) == (200, "")
    node.kill()
    try:
        past_the_bound()
        headers = client.headers("GET", DEVICE, token)
        refused = client.http.get(api.url + DEVICE, headers=headers)
        assert answer(refused) == (503, "unavailable")
        assert refused.headers["Retry-After"] == "1"
    finally:
        node.start()
    again = client.http.get(api.url + DEVICE, headers=headers)  # the same PoP: not recorded
    assert answer(again) == (200, "")
    metrics = client.http.get(api.url + "/metrics").text
    assert 'taap_guard_revocation_refreshes_total{outcome="failed"}' in metrics
    assert 'taap_guard_requests_total{error_code="unavailable",outcome="refused"}' in metrics
