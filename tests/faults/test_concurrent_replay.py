"""SECURITY.md R2 and §2 invariant 3: one PoP sent 50 times at the same instant, spread over two
processes that share one Redis, succeeds exactly once (token server and guard)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from faults_kit import PrivateRedis, Shot, audit, fire_together

from kit.clients import Client, register_client, token_headers
from kit.processes import Service, start_sample_api, start_serve
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e]

COPIES = 50
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@dataclass
class Pair:
    servers: list[Service]
    guards: list[Service]
    client: Client


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, module_redis: PrivateRedis, rsa_key: PrivateKey
) -> Iterator[Pair]:
    tmp_path = tmp_path_factory.mktemp("pair")
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"])
    started: list[Service] = []
    try:
        for name in ("serve-1", "serve-2"):
            started.append(
                start_serve(tmp_path, database_url, name=name, TAAP_REDIS_URL=module_redis.url)
            )
        servers = list(started)
        for name in ("guard-1", "guard-2"):
            started.append(
                start_sample_api(tmp_path, servers[0].url, name=name, redis_url=module_redis.url)
            )
        yield Pair(servers, started[2:], client)
    finally:
        client.http.close()
        for service in reversed(started):
            service.stop()


def _tally(results: list[tuple[int, str | None]]) -> Counter[tuple[int, str | None]]:
    return Counter(results)


def test_token_endpoint_one_pop_fifty_copies_two_processes(pair: Pair) -> None:
    client = pair.client
    headers = token_headers(client.client_id, client.secret, client.key)
    shots = [
        Shot(
            "POST",
            pair.servers[i % 2].url + "/oauth2/v2/tokens",
            headers,
            warm=pair.servers[i % 2].url + "/healthz",
        )
        for i in range(COPIES)
    ]
    before = [len(audit(server)) for server in pair.servers]
    results = fire_together(shots)
    tally = _tally([(r.status, r.body.get("error_code")) for r in results])
    assert tally == {(200, None): 1, (401, "pop_replayed"): COPIES - 1}, tally
    winner = next(r for r in results if r.status == 200)
    assert winner.body["access_token"]
    for result in results:
        if result.status == 401:
            assert "access_token" not in result.body
    # Both processes answered, and exactly one token was issued across them.
    lines = [
        line for n, server in zip(before, pair.servers, strict=True) for line in audit(server)[n:]
    ]
    per_server = [len(audit(server)) - n for n, server in zip(before, pair.servers, strict=True)]
    assert per_server == [COPIES // 2, COPIES // 2], per_server
    assert Counter(line["event"] for line in lines) == {
        "token_issued": 1,
        "token_rejected": COPIES - 1,
    }


def test_guard_one_pop_fifty_copies_two_processes(pair: Pair) -> None:
    client = pair.client
    access = str(client.tokens(pair.servers[0].url + "/oauth2/v2/tokens")["access_token"])
    headers = client.headers("GET", DEVICE, access)
    shots = [
        Shot(
            "GET",
            pair.guards[i % 2].url + DEVICE,
            headers,
            warm=pair.guards[i % 2].url + "/healthz",
        )
        for i in range(COPIES)
    ]
    results = fire_together(shots)
    tally = _tally([(r.status, r.body.get("error_code")) for r in results])
    assert tally == {(200, None): 1, (401, "pop_replayed"): COPIES - 1}, tally
    winner = next(r for r in results if r.status == 200)
    assert winner.body["iccid"] == "8901260000000000001"
    # A fresh PoP for the same token still passes on either guard: only that jti was burned.
    for guard in pair.guards:
        response = client.call("GET", guard.url + DEVICE, access)
        assert response.status_code == 200, response.text
