"""Real ``taap serve`` processes for the operations tests: start on a free port, register a
client in the same SQLite registry, build token requests, stop."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from taap.core import PrivateKey, build_pop_token, generate_private_key
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.sql import open_registry

TAAP = str(Path(sys.executable).parent / "taap")
V2 = "/oauth2/v2/tokens"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAAP_", "PROMETHEUS_"))}
    env["TAAP_SHUTDOWN_DRAIN"] = "0"  # tests of the drain set it themselves
    env.update(extra)
    return env


def start(tmp: Path, database_url: str, *flags: str, env: dict[str, str] | None = None) -> Node:
    """``taap serve`` on a free port; returns once ``/readyz`` answers 200."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [TAAP, "serve", "--port", str(port), "--database-url", database_url, *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env if env is not None else environment(),
            cwd=tmp,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"taap serve exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return Node(base, port, proc, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"taap serve not ready: {log.read_text()[-3000:]}")


@dataclass
class Client:
    client_id: str
    secret: str
    key: PrivateKey

    @property
    def authorization(self) -> str:
        raw = f"{self.client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def request(self, body: str = "") -> tuple[dict[str, str], bytes]:
        """Headers and body of a valid v2 token request with a fresh PoP."""
        pairs: list[tuple[str, str]] = [
            ("Content-Type", "application/json"),
            ("Authorization", self.authorization),
            ("uri", V2),
            ("http-method", "POST"),
        ]
        if body:
            pairs.append(("body", body))
        pop = build_pop_token(pairs, self.key)
        headers = {
            "Content-Type": "application/json",
            "Authorization": self.authorization,
            "X-Authorization": pop,
        }
        return headers, body.encode()


def register(database_url: str, *, key_password: bytes | None = None) -> Client:
    """A new client subscribed to ``connectivity`` in the registry at ``database_url``."""

    async def main() -> Client:
        key = generate_private_key(2048)
        database = parse_database_url(database_url)
        registry = await open_registry(
            database, pepper=load_pepper(database), key_password=key_password
        )
        try:
            record, secret = await registry.create_client(
                name="ops", keys=[key.public], apis=["connectivity"]
            )
        finally:
            await registry.close()
        return Client(record.client_id, secret, key)

    return asyncio.run(main())
