"""End-to-end fixtures: the token server (``taap serve``) and the guarded sample APIs
(``taap sample-api``) as real processes on loopback ports, over a SQLite registry the test
also opens.

Clients are registered before the token server starts, so each module's fixture says up front
which clients and subscriptions its tests use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_kit import (
    HERE,
    TAAP,
    Client,
    Service,
    clean_env,
    free_port,
    register_client,
    start_service,
    token_server_cmd,
)

from taap.core import PrivateKey

# Guards refetch at most once a second here (30 s in production) so rotation tests stay fast.
GUARD_ENV = {"TAAP_JWKS_MIN_REFRESH": "1"}


@dataclass
class Stack:
    folder: Path
    database_url: str
    token: Service
    api: Service
    clients: dict[str, Client] = field(default_factory=dict)
    extra: list[Service] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return self.token.url + "/oauth2/v2/tokens"

    def stop(self) -> None:
        for client in self.clients.values():
            client.http.close()
        for service in [*self.extra, self.api, self.token]:
            service.stop()


def register_all(
    database_url: str, wanted: Mapping[str, tuple[PrivateKey, Sequence[str]]]
) -> dict[str, Client]:
    return {
        name: register_client(database_url, key, apis, name) for name, (key, apis) in wanted.items()
    }


def start_token_server(
    folder: Path, database_url: str, *, port: int | None = None, **env: str
) -> Service:
    port = port or free_port()
    return start_service(
        "token-server",
        token_server_cmd(database_url, port),
        url=f"http://127.0.0.1:{port}",
        env=clean_env(TAAP_KEY_REFRESH="0", **env),
        folder=folder,
    )


def start_guard(
    folder: Path, token_url: str, name: str = "sample-api", redis_url: str | None = None
) -> Service:
    port = free_port()
    cmd = [TAAP, "sample-api", "--token-server", token_url, "--port", str(port)]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    return start_service(
        name, cmd, url=f"http://127.0.0.1:{port}", env=clean_env(**GUARD_ENV), folder=folder
    )


def start_echo(folder: Path, token_url: str, *, max_body: int | None = None) -> Service:
    port = free_port()
    env = clean_env(TAAP_TOKEN_SERVER=token_url, **GUARD_ENV)
    if max_body is not None:
        env["TAAP_MAX_BODY"] = str(max_body)
    cmd = [
        str(Path(TAAP).parent / "python"),
        "-m",
        "uvicorn",
        "echo_app:create",
        "--factory",
        "--app-dir",
        str(HERE),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return start_service("echo", cmd, url=f"http://127.0.0.1:{port}", env=env, folder=folder)


def start_stack(
    folder: Path, wanted: Mapping[str, tuple[PrivateKey, Sequence[str]]], **env: str
) -> Stack:
    database_url = f"sqlite:///{folder / 'taap.db'}"
    clients = register_all(database_url, wanted)
    token = start_token_server(folder, database_url, **env)
    try:
        api = start_guard(folder, token.url)
    except BaseException:
        token.stop()
        raise
    return Stack(folder, database_url, token, api, clients)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: PrivateKey,
    other_key: PrivateKey,
    demo_key: PrivateKey,
) -> Iterator[Stack]:
    wanted = {
        "a": (rsa_key, ("connectivity", "sms-notification")),
        "b": (other_key, ("connectivity",)),
        "sdk": (rsa_key, ("connectivity",)),
        "tmo": (demo_key, ("connectivity",)),
    }
    running = start_stack(tmp_path_factory.mktemp("e2e"), wanted)
    yield running
    running.stop()
