"""SECURITY.md A5 and §2 invariant 4: a flood of failed authentications from one address gets
429 ``rate_limited`` with ``Retry-After``, while a well-behaved client at another address keeps
getting tokens; and a burst spread over two processes cannot beat the shared counter.

Two ``taap serve`` processes share a private Redis (rate limits and replay store) and trust
``X-Forwarded-For`` from 127.0.0.1 (``TAAP_FORWARDED_ALLOW_IPS``), which is how each request
claims its own source address here. Default limits (A8): per address burst 30, one token back
every 2 s; per client burst 10, one per 6 s."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from faults_kit import PrivateRedis, Shot, audit, fire_together

from kit.clients import Client, register_client, token_headers
from kit.processes import Service, start_serve
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e]

ADDRESS_BURST = 30


@dataclass
class Nodes:
    servers: list[Service]
    good: Client

    def url(self, index: int) -> str:
        return self.servers[index % len(self.servers)].url + "/oauth2/v2/tokens"


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, module_redis: PrivateRedis, rsa_key: PrivateKey
) -> Iterator[Nodes]:
    folder = tmp_path_factory.mktemp("flood")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    good = register_client(database_url, rsa_key, ["connectivity"])
    servers: list[Service] = []
    try:
        for name in ("serve-1", "serve-2"):
            servers.append(
                start_serve(
                    folder,
                    database_url,
                    name=name,
                    TAAP_REDIS_URL=module_redis.url,
                    TAAP_FORWARDED_ALLOW_IPS="127.0.0.1",
                )
            )
        yield Nodes(servers, good)
    finally:
        good.http.close()
        for server in servers:
            server.stop()


def _attack_headers(client: Client, source: str) -> dict[str, str]:
    """A correctly signed request for a client id that does not exist (a guess)."""
    headers = token_headers(f"taap-{uuid.uuid4().hex}", "guess", client.key)
    return {**headers, "X-Forwarded-For": source}


def test_flood_from_one_address_is_limited_other_address_unaffected(nodes: Nodes) -> None:
    attacker, bystander = "203.0.113.66", "198.51.100.7"
    good = nodes.good
    http = good.http
    answers: list[tuple[int, str]] = []
    retry_after: list[int] = []
    for i in range(2 * ADDRESS_BURST):
        response = http.post(nodes.url(i), headers=_attack_headers(good, attacker))
        answers.append((response.status_code, response.json()["error_code"]))
        assert "access_token" not in response.json()
        if response.status_code == 429:
            assert response.json()["error"] == "slow_down"
            retry_after.append(int(response.headers["retry-after"]))
        if i % 6 == 0:
            # The well-behaved client, elsewhere, is served throughout the flood.
            headers = {
                **token_headers(good.client_id, good.secret, good.key),
                "X-Forwarded-For": bystander,
            }
            ok = http.post(nodes.url(i + 1), headers=headers)
            assert ok.status_code == 200, ok.text
    tally = Counter(status for status, _ in answers)
    # The first failures are answered 401; once the address bucket is empty, 429 (refill slack:
    # one token per 2 s while the flood runs).
    assert answers[:ADDRESS_BURST] == [(401, "client_auth_failed")] * ADDRESS_BURST
    assert tally[429] >= ADDRESS_BURST - 3, tally
    assert set(tally) == {401, 429}
    assert retry_after
    assert all(1 <= seconds <= 2 for seconds in retry_after), retry_after
    # While its bucket is empty the attacker learns nothing: even right credentials get 429.
    right = {
        **token_headers(good.client_id, good.secret, good.key),
        "X-Forwarded-For": attacker,
    }
    limited = http.post(nodes.url(0), headers=right)
    assert (limited.status_code, limited.json()["error_code"]) == (429, "rate_limited")
    # Both nodes saw the flood; every 429 is audited as such.
    lines = [line for server in nodes.servers for line in audit(server)]
    flood = [line for line in lines if line["source"] == attacker]
    assert Counter(line["error_code"] for line in flood)["rate_limited"] == tally[429] + 1
    assert not [line for line in flood if line["event"] == "token_issued"]
    issued = [line for line in lines if line["event"] == "token_issued"]
    assert {line["source"] for line in issued} == {bystander}


def test_concurrent_burst_over_two_nodes_cannot_beat_the_counter(nodes: Nodes) -> None:
    source = "192.0.2.99"
    good = nodes.good
    shots = [
        Shot(
            "POST",
            nodes.url(i),
            _attack_headers(good, source),
            warm=nodes.servers[i % 2].url + "/healthz",
        )
        for i in range(3 * ADDRESS_BURST)
    ]
    results = fire_together(shots)
    tally = Counter((r.status, r.body["error_code"]) for r in results)
    assert set(tally) == {(401, "client_auth_failed"), (429, "rate_limited")}, tally
    # One atomic Lua decision per failure in the shared Redis: at most the burst (plus the
    # refill of the second or two the burst takes) gets through to a 401.
    assert ADDRESS_BURST <= tally[(401, "client_auth_failed")] <= ADDRESS_BURST + 2, tally
    # And the bystander is still served by both nodes.
    for index in (0, 1):
        headers = {
            **token_headers(good.client_id, good.secret, good.key),
            "X-Forwarded-For": "198.51.100.8",
        }
        response = httpx.post(nodes.url(index), headers=headers)
        assert response.status_code == 200, response.text
