"""Throwaway Redis and PostgreSQL servers started from the installed binaries, for a test
session run without ``TAAP_TEST_REDIS_URL`` / ``TAAP_TEST_POSTGRES_URL`` (CONTRIBUTING.md).

Each listens on a free loopback port, keeps its data in a temporary folder that is removed
afterwards, and is stopped when the session ends. PostgreSQL refuses to run as root, so when
the tests run as root its commands run as the ``postgres`` user (``runuser``), as on Debian.
A missing binary or user skips the tests that need the service, or fails them under CI.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kit.processes import free_port, need_service, stop_process

__all__ = ["postgres_bin_dir", "throwaway_postgres", "throwaway_redis"]

START_TIMEOUT = 30.0
#: The role and database the throwaway cluster gets, as .ci/run creates them.
ROLE, DATABASE = "taap", "taap_test"


def _wait_for_redis(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if _redis_answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start:\n{log.read_text()[-2000:]}")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def throwaway_redis() -> Iterator[str]:
    """A ``redis-server`` without persistence on a free port; its URL (database 0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        need_service("Redis", "TAAP_TEST_REDIS_URL is not set and redis-server is not installed")
    assert binary
    folder = Path(tempfile.mkdtemp(prefix="taap-redis-"))
    port = free_port()
    log = folder / "redis.log"
    with log.open("wb") as out:
        settings = f"--port {port} --bind 127.0.0.1 --appendonly no --daemonize no".split()
        proc = subprocess.Popen(
            [binary, *settings, "--save", "", "--dir", str(folder)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_redis(proc, port, log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def postgres_bin_dir() -> Path | None:
    """Debian's newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, else
    the folder of an ``initdb`` on the PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def _as_postgres() -> list[str]:
    """The prefix that runs a PostgreSQL command as a user it accepts."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        need_service("PostgreSQL", "running as root, and runuser is not installed")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        need_service("PostgreSQL", "running as root, and there is no postgres user")
    return ["runuser", "-u", "postgres", "--"]


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr[-2000:]}")


def _create_database(port: int) -> None:
    import psycopg  # only the PostgreSQL tests need it

    with psycopg.connect(
        host="127.0.0.1", port=port, user=ROLE, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """``initdb`` + ``pg_ctl start`` into a temporary folder, a free port, loopback only;
    the URL of its ``taap_test`` database, owned by the superuser ``taap`` (trust auth)."""
    bindir = postgres_bin_dir()
    if bindir is None:
        need_service("PostgreSQL", "TAAP_TEST_POSTGRES_URL is not set and initdb is not installed")
    assert bindir
    prefix = _as_postgres()
    folder = Path(tempfile.mkdtemp(prefix="taap-pg-"))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, log, port = folder / "data", folder / "postgres.log", free_port()
    _run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            ROLE,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ],
        "initdb",
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        _run([*pg_ctl, "-o", options, "-l", str(log), "-w", "-t", "60", "start"], "pg_ctl start")
        _create_database(port)
        yield f"postgresql://{ROLE}:{ROLE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60, check=False
        )
        shutil.rmtree(folder, ignore_errors=True)
