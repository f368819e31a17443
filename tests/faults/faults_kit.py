"""Helpers for the fault tests: private Redis and PostgreSQL servers the test owns (so it may
stop them), audit-log reading and truly concurrent requests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kit.clients import Client, token_headers
from kit.processes import Service, free_port, need_service, stop_process, wait_until
from kit.stores import adopt_redis
from logkit import audit_records

PG_BIN = Path(os.environ.get("TAAP_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


# -- private Redis -------------------------------------------------------------------------
@dataclass
class PrivateRedis:
    """A ``redis-server`` on a free loopback port, no persistence, owned by one test."""

    binary: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, folder: Path) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            need_service("redis-server", "binary not on PATH (.ci/run installs it)")
        assert binary is not None
        return cls(binary, free_port(), folder)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, *extra: str) -> None:
        """Start (or start again, on the same port and folder) with ``extra`` arguments."""
        log = (self.folder / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.ping, 10, "private redis-server start")

    def adopt(self) -> None:
        """Mark the new server as a replay store in service (no epoch window to wait out);
        a restart is not adopted: it is the loss the epoch rule is about."""
        adopt_redis(self.url)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            stop_process(self.proc, timeout=10)
        self.proc = None
        wait_until(lambda: not self.ping(), 5, "private redis-server stop")


# -- private PostgreSQL --------------------------------------------------------------------
@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder, on a free loopback port.

    Run as the ``postgres`` user when the tests run as root (CI), as the caller otherwise.
    """

    folder: Path
    port: int
    as_user: list[str]
    running: bool = False

    @classmethod
    def create(cls) -> PrivatePostgres:
        if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
            need_service("PostgreSQL binaries", f"no initdb/pg_ctl in {PG_BIN}")
        folder = Path(tempfile.mkdtemp(prefix="taap-faults-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                need_service("runuser", "needed to run PostgreSQL as the postgres user")
            shutil.chown(folder, user="postgres", group="postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        return cls(folder, free_port(), as_user)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*self.as_user, *cmd], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"{cmd[0]} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.folder} -c fsync=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )
        self.running = True

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            if self.running:
                self._run(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- audit ---------------------------------------------------------------------------------
def audit(service: Service) -> list[dict[str, Any]]:
    """The audit lines ``taap serve`` wrote to its log so far."""
    return audit_records(service.log)


# -- concurrency ---------------------------------------------------------------------------
@dataclass
class Shot:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    warm: str = ""  # a GET on the same origin that opens the connection beforehand


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def fire_together(shots: Sequence[Shot]) -> list[Result]:
    """Send every shot at the same instant: one thread and one open connection per shot,
    released together by a barrier, so the requests race inside the servers."""
    barrier = threading.Barrier(len(shots))
    results: list[Result | BaseException | None] = [None] * len(shots)

    def one(index: int, shot: Shot) -> None:
        try:
            with httpx.Client(timeout=30.0) as http:
                if shot.warm:
                    http.get(shot.warm)  # the connection is open before the barrier falls
                barrier.wait(timeout=30)
                response = http.request(
                    shot.method, shot.url, headers=dict(shot.headers), content=shot.body
                )
                results[index] = Result(
                    response.status_code, response.json(), dict(response.headers)
                )
        except BaseException as exc:
            results[index] = exc
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(shots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    out: list[Result] = []
    for item in results:
        if not isinstance(item, Result):
            raise AssertionError(f"a concurrent request failed: {item!r}")
        out.append(item)
    return out


class Load:
    """Token requests with fresh PoPs, sent back to back from a thread until stopped."""

    def __init__(self, token_url: str, client: Client) -> None:
        self.token_url = token_url
        self.client = client
        self.answers: list[tuple[int, str | None]] = []
        self.tokens: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30.0) as http:
            while not self._stop.is_set():
                headers = token_headers(self.client.client_id, self.client.secret, self.client.key)
                try:
                    response = http.post(self.token_url, headers=headers)
                except httpx.HTTPError as exc:
                    self.answers.append((0, type(exc).__name__))
                    continue
                body = response.json()
                self.answers.append((response.status_code, body.get("error_code")))
                if response.status_code == 200:
                    self.tokens.append(body["access_token"])

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
