"""Graceful shutdown of a real ``taap serve`` (SECURITY.md §4): on SIGTERM ``/readyz`` turns
503 at once while requests are still served for ``TAAP_SHUTDOWN_DRAIN``; then new connections
are refused, requests in flight complete with their tokens, and the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from kit.clients import V2_TOKENS, Client, register_client
from kit.processes import clean_env, start_serve
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e]


def _open_slow_request(port: int, client: Client) -> socket.socket:
    """A token request whose head is sent now and whose body is still to come."""
    body = b"{}"
    headers = client.token_headers(V2_TOKENS, body)
    head = f"POST {V2_TOKENS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(head.encode())
    return conn


def _finish(conn: socket.socket, body: bytes = b"{}") -> tuple[int, dict[str, str], bytes]:
    conn.sendall(body)
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.lower().split(": ", 1) for line in lines[1:])
    return status, fields, payload


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_sigterm_drains_then_finishes_requests_in_flight(
    tmp_path: Path, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"], "ops")
    client.http.close()
    node = start_serve(tmp_path, database_url, name="serve", env=clean_env(TAAP_SHUTDOWN_DRAIN="2"))
    try:
        slow = [_open_slow_request(node.port, client) for _ in range(3)]
        time.sleep(0.3)  # the server has read their heads and waits for the bodies
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Draining: unready at once, still serving new connections and requests.
        ready = httpx.get(f"{node.url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert "shutting down" in ready.json()["error_description"]
        during = httpx.post(f"{node.url}{V2_TOKENS}", headers=client.token_headers(), timeout=5)
        assert during.status_code == 200
        assert node.proc.poll() is None
        # After the drain the listening socket closes: new connections are refused ...
        deadline = time.monotonic() + 10
        while not _refused(node.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _refused(node.port)
        assert node.proc.poll() is None  # ... while the requests in flight are still served
        answers = [_finish(conn) for conn in slow]
        for status, fields, payload in answers:
            assert status == 200
            assert fields["connection"] == "close"
            assert json.loads(payload)["access_token"].startswith("eyJ")
        assert node.proc.wait(30) == 0
    finally:
        node.stop()
    audit = [
        json.loads(line)
        for line in node.log.read_text().splitlines()
        if line.startswith("{") and '"token_issued"' in line
    ]
    assert len(audit) == 4  # the request during the drain and the three in flight
    logs = [json.loads(line) for line in node.log.read_text().splitlines() if line.startswith("{")]
    assert any("draining" in line.get("message", "") for line in logs)


def test_a_second_sigterm_cuts_the_drain_short(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    node = start_serve(
        tmp_path, database_url, name="serve", env=clean_env(TAAP_SHUTDOWN_DRAIN="60")
    )
    try:
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert httpx.get(f"{node.url}/readyz", timeout=5).status_code == 503
        started = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(20) == 0
        assert time.monotonic() - started < 15
    finally:
        node.stop()
