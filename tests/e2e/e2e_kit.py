"""Helpers for the end-to-end tests: a token server and a guarded sample API as real processes
on loopback ports, over a SQLite registry the test shares with the token server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.clients import Client, register_clients
from kit.processes import (
    TAAP,
    Service,
    clean_env,
    free_port,
    start_sample_api,
    start_serve,
    start_service,
)
from taap.core import PrivateKey

HERE = Path(__file__).resolve().parent


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


def start_echo(folder: Path, token_url: str, *, max_body: int | None = None) -> Service:
    """``echo_app`` under uvicorn, guarded, trusting the token server at ``token_url``."""
    port = free_port()
    env = clean_env(TAAP_TOKEN_SERVER=token_url, TAAP_JWKS_MIN_REFRESH="1")
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
    """Clients ``wanted`` registered, then ``taap serve`` and ``taap sample-api`` started."""
    database_url = f"sqlite:///{folder / 'taap.db'}"
    clients = register_clients(database_url, wanted)
    token = start_serve(folder, database_url, **env)
    try:
        api = start_sample_api(folder, token.url)
    except BaseException:
        token.stop()
        raise
    return Stack(folder, database_url, token, api, clients)
