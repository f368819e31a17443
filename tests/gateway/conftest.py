"""One running system for the gateway tests of a module: ``taap serve`` (token server, Redis
replay store), clients registered in its registry, the node upstream, and ``taap gateway``
forwarding Connectivity and SMS Notification to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from gateway_kit import start_gateway, start_upstream

from kit.clients import V2_TOKENS, Client, register_clients
from kit.processes import Service, clean_env, free_port, start_serve
from taap.core import PrivateKey, generate_private_key

PRODUCTS = ("connectivity", "sms-notification")
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
#: forwarded to a port where nothing listens
DOWN_PATH = "/location/v1/where"


@dataclass
class Stack:
    folder: Path
    database_url: str
    redis_url: str
    token_server: Service
    upstream: Service
    gateway: Service
    clients: dict[str, Client]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return self.token_server.url + V2_TOKENS

    def seen(self) -> list[str]:
        """The request targets the upstream received so far."""
        found: list[str] = httpx.get(self.upstream.url + "/__seen", timeout=5).json()
        return found

    def token(self, name: str) -> str:
        """A fresh access token of client ``name``."""
        token = self.clients[name].tokens(self.token_url)["access_token"]
        assert isinstance(token, str)
        return token


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {name: generate_private_key(2048) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    keys: dict[str, PrivateKey],
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("gateway")
    database_url = f"sqlite:///{folder}/taap.db"
    server = start_serve(
        folder,
        database_url,
        "--redis-url",
        redis_url,
        env=clean_env(TAAP_KEY_REFRESH="0", TAAP_REVOCATION_MAX_AGE="1"),
    )
    clients = register_clients(
        database_url,
        {
            "alice": (keys["alice"], [*PRODUCTS, "location"]),
            "bob": (keys["bob"], ["connectivity"]),
            "carol": (keys["carol"], ["connectivity"]),
            "dave": (keys["dave"], ["sms-notification"]),
        },
    )
    upstream = start_upstream(folder)
    gateway = start_gateway(
        folder,
        server.url,
        {**dict.fromkeys(PRODUCTS, upstream.url), "location": f"http://127.0.0.1:{free_port()}"},
        "--upstream-timeout",
        "2",
        redis_url=redis_url,
        TAAP_REVOCATION_MAX_AGE="1",
    )
    try:
        yield Stack(folder, database_url, redis_url, server, upstream, gateway, clients)
    finally:
        for service in (gateway, upstream, server):
            service.stop()
        for client in clients.values():
            client.http.close()
