"""Helpers for the end-to-end tests: real processes on loopback ports, a SQLite registry the
test shares with the token server, and clients that build their requests from the core."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx

from taap.core import PrivateKey, build_pop_token, request_pairs
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import Registry
from taap.server.registry.sql import open_registry

HERE = Path(__file__).resolve().parent
TAAP = str(Path(sys.executable).parent / "taap")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any TAAP_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    # No unready-but-serving pause at SIGTERM (2 s by default): these servers sit behind no
    # load balancer; tests/ops/test_shutdown.py sets it where the drain is what is tested.
    env["TAAP_SHUTDOWN_DRAIN"] = "0"
    env.update(extra)
    return env


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_service(
    name: str,
    cmd: Sequence[str],
    *,
    url: str,
    env: Mapping[str, str],
    folder: Path,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> Service:
    """Start ``cmd`` and wait until ``url/healthz`` answers (any status below 500)."""
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
    service = Service(name, url, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code < 500:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    service.stop()
    raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")


def token_server_cmd(database_url: str, port: int) -> list[str]:
    return [TAAP, "serve", "--port", str(port), "--database-url", database_url]


def with_registry(database_url: str, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Run ``work`` on the registry the token server uses (its own loop, opened and closed)."""

    async def run() -> T:
        pepper = load_pepper(parse_database_url(database_url))
        registry = await open_registry(database_url, pepper=pepper)
        try:
            return await work(registry)
        finally:
            await registry.close()

    return asyncio.run(run())


@dataclass
class Client:
    """A registered client that performs steps 1-4 by hand (every byte visible to the test)."""

    client_id: str
    secret: str
    key: PrivateKey
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def token_response(self, token_url: str) -> httpx.Response:
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        base = [("Content-Type", "application/json"), ("Authorization", f"Basic {basic}")]
        path = httpx.URL(token_url).raw_path.decode()
        pop = build_pop_token(request_pairs("POST", path, base), self.key)
        return self.http.post(token_url, headers={**dict(base), "X-Authorization": pop})

    def tokens(self, token_url: str) -> dict[str, Any]:
        response = self.token_response(token_url)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def headers(
        self,
        method: str,
        target: str,
        access_token: str,
        body: bytes = b"",
        *,
        key: PrivateKey | None = None,
        now: float | None = None,
    ) -> dict[str, str]:
        base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {access_token}")]
        pairs = request_pairs(method, unquote(target), base, body)
        pop = build_pop_token(pairs, key or self.key, now=now)
        return {**dict(base), "X-Authorization": pop}

    def call(self, method: str, url: str, access_token: str, body: bytes = b"") -> httpx.Response:
        target = httpx.URL(url).raw_path.decode()
        headers = self.headers(method, target, access_token, body)
        return self.http.request(method, url, headers=headers, content=body)


def register_client(
    database_url: str, key: PrivateKey, apis: Sequence[str], name: str = "e2e"
) -> Client:
    async def create(registry: Registry) -> Client:
        record, secret = await registry.create_client(name=name, keys=[key.public], apis=apis)
        return Client(record.client_id, secret, key)

    return with_registry(database_url, create)


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
