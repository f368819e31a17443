"""Real processes on loopback: ``taap serve``, ``taap sample-api``, any command that answers
HTTP, and the ``taap`` CLI, each with an environment free of the caller's ``TAAP_*`` settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

__all__ = [
    "TAAP",
    "Service",
    "clean_env",
    "free_port",
    "in_ci",
    "need_service",
    "run_taap",
    "start_sample_api",
    "start_serve",
    "start_service",
    "stop_process",
    "taap_ok",
    "wait_until",
]

TAAP = str(Path(sys.executable).parent / "taap")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_service(what: str, why: str) -> None:
    """Fail under CI, skip locally: a missing service must never pass CI silently."""
    message = f"{what} unavailable: {why}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``probe`` until it is true; the seconds it took.

    Raises:
        AssertionError: still false after ``timeout`` seconds.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any ``TAAP_*`` or ``PROMETHEUS_*`` setting, plus ``extra``.

    No unready-but-serving pause at SIGTERM (2 s by default): these servers sit behind no load
    balancer; a test of the drain sets ``TAAP_SHUTDOWN_DRAIN`` in ``extra``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAAP_", "PROMETHEUS_"))}
    env["TAAP_SHUTDOWN_DRAIN"] = "0"
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@dataclass
class Service:
    """A process answering HTTP at ``url``; its stdout and stderr go to ``log``."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def stop(self) -> int:
        return stop_process(self.proc)


def start_service(
    name: str,
    cmd: Sequence[str],
    *,
    url: str,
    env: Mapping[str, str],
    folder: Path,
    cwd: Path | None = None,
    probe: str = "/healthz",
    timeout: float = 40.0,
) -> Service:
    """Start ``cmd`` and wait until ``url + probe`` answers below 500 (``/readyz``: 503 until
    ready). The log is ``folder/<name>-<port>.log``.

    Raises:
        RuntimeError: the process exited, or did not answer within ``timeout`` seconds.
    """
    log = folder / f"{name}-{urlsplit(url).port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
    service = Service(name, url, proc, log)

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(url + probe, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout, f"{name} {probe}")
    except AssertionError:
        service.stop()
        raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}") from None
    return service


def start_serve(
    folder: Path,
    database_url: str,
    *args: str,
    name: str = "token-server",
    env: Mapping[str, str] | None = None,
    **settings: str,
) -> Service:
    """``taap serve ARGS`` on a free port over ``database_url``, once ``/readyz`` says ready.

    ``env`` (default: :func:`clean_env` with ``TAAP_KEY_REFRESH=0``, so a key rotated by the
    test is signed with on the next request) plus ``settings``; run in ``folder``.
    """
    port = free_port()
    environ = dict(env) if env is not None else clean_env(TAAP_KEY_REFRESH="0")
    environ.update(settings)
    return start_service(
        name,
        [TAAP, "serve", "--port", str(port), "--database-url", database_url, *args],
        url=f"http://127.0.0.1:{port}",
        env=environ,
        folder=folder,
        cwd=folder,
        probe="/readyz",
    )


def start_sample_api(
    folder: Path,
    token_url: str,
    *,
    name: str = "sample-api",
    redis_url: str | None = None,
    **settings: str,
) -> Service:
    """``taap sample-api`` on a free port, trusting the token server at ``token_url``, with
    the ``TAAP_*`` ``settings`` given.

    It refetches the JWKS at most once a second (30 s in production), so rotation tests stay
    fast.
    """
    port = free_port()
    cmd = [TAAP, "sample-api", "--token-server", token_url, "--port", str(port)]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    env = clean_env(TAAP_JWKS_MIN_REFRESH="1", **settings)
    return start_service(name, cmd, url=f"http://127.0.0.1:{port}", env=env, folder=folder)


def run_taap(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``taap ARGS`` as a user runs it (default environment: :func:`clean_env`)."""
    return subprocess.run(
        [TAAP, *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def taap_ok(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """``taap ARGS``'s stdout; fails the test, showing stderr, unless it exits 0."""
    result = run_taap(*args, env=env, cwd=cwd)
    assert result.returncode == 0, f"taap {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout
