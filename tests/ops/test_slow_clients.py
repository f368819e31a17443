"""Slow and surplus clients against a real ``taap serve`` and ``taap sample-api`` (and the
sandbox): a request head must arrive within ``TAAP_HEADER_TIMEOUT`` in all, a body must keep up
``TAAP_BODY_MIN_RATE`` after a 5 s grace, a head may not outgrow the header cap, and past
``TAAP_MAX_CONNECTIONS`` a new connection is refused at once while the open ones are served.

The timeouts are set small (2–3 s) so the tests stay short; the 5 s body grace is the real one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from slow_kit import (
    TOKEN_HEAD,
    Answer,
    dribble,
    keep_alive_get,
    open_files,
    read_answer,
    rss_bytes,
)

from kit.clients import V2_TOKENS, Client, register_client
from kit.processes import clean_env, free_port, start_sample_api, start_serve, wait_until
from taap.core import PrivateKey
from taap.sandbox import running_sandbox

pytestmark = [pytest.mark.e2e]

HEADER_TIMEOUT = 2.0
GRACE = 5.0  # the listener's body grace (not a setting)
SLACK = 3.0  # generous: a loaded 2-core machine
MiB = 1024 * 1024


def _connect(port: int) -> tuple[socket.socket, float]:
    start = time.monotonic()
    return socket.create_connection(("127.0.0.1", port), timeout=20), start


def _assert_timeout_answer(answer: Answer, description: str) -> None:
    assert answer.status == 408, answer.raw
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json == {
        "error": "invalid_request",
        "error_description": description,
        "error_code": "request_timeout",
    }


def _measure_normal_traffic(url: str, client: Client, stop: threading.Event) -> list[float]:
    """Token requests (kept-alive) and /healthz (new connections) until ``stop``; latencies."""
    latencies: list[float] = []
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            start = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            latencies.append(time.monotonic() - start)
            start = time.monotonic()
            response = http.post(f"{url}{V2_TOKENS}", headers=client.token_headers())
            assert response.status_code == 200, response.text
            latencies.append(time.monotonic() - start)
            time.sleep(0.1)
    return latencies


def test_two_hundred_dribbling_connections_are_closed_while_others_are_served(
    tmp_path: Path, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"], "slow")
    node = start_serve(tmp_path, database_url, TAAP_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    try:
        pid = node.proc.pid
        client.tokens(f"{node.url}{V2_TOKENS}")  # warm: the first token loads the signing key
        base_rss, base_files = rss_bytes(pid), open_files(pid)

        stop = threading.Event()
        latencies: list[float] = []
        normal = threading.Thread(
            target=lambda: latencies.extend(_measure_normal_traffic(node.url, client, stop))
        )
        normal.start()
        try:
            crowd = dribble(node.port, heads=100, bodies=100, interval=0.5, give_up=20)
        finally:
            stop.set()
            normal.join(30)

        for d in crowd:
            bound = HEADER_TIMEOUT if d.kind == "head" else GRACE + 200 / 1024
            assert d.closed is not None, f"a {d.kind} dribbler is still open after 20 s"
            # A byte in flight as the server closes may turn its 408 into a reset: either ends it.
            assert d.closed - d.opened < bound + SLACK, (d.kind, d.closed - d.opened)
            assert d.received == b"" or d.received.startswith(b"HTTP/1.1 408 "), d.received
        # The server answered while the connections dribbled, and promptly.
        assert len(latencies) >= 10
        assert max(latencies) < 1.0, sorted(latencies)[-5:]

        # Everything the dribblers held is given back.
        wait_until(lambda: open_files(pid) <= base_files + 2, 10, "the connections' descriptors")
        assert rss_bytes(pid) < base_rss + 32 * MiB, (base_rss, rss_bytes(pid))
        assert client.tokens(f"{node.url}{V2_TOKENS}")["access_token"]
    finally:
        node.stop()
        client.http.close()


def _partial_head(port: int) -> Answer:
    sock, start = _connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return read_answer(sock, start)


def _second_head_after_a_response(port: int) -> Answer:
    # Idle 1 s after the accept, one request answered: the next head's time starts there.
    sock, start = _connect(port)
    time.sleep(1.0)
    assert keep_alive_get(sock).startswith(b"HTTP/1.1 200 ")
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    return read_answer(sock, start)


def _slow_body(port: int) -> Answer:
    sock, start = _connect(port)
    sock.sendall(TOKEN_HEAD + b"{")
    return read_answer(sock, start)


def _late_but_within_grace(port: int) -> Answer:
    # The whole body 3 s after the head, inside the 5 s grace: judged by the app (401, no
    # credentials), not timed out.
    sock, start = _connect(port)
    sock.sendall(TOKEN_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    time.sleep(3.0)
    sock.sendall(b"{" + b" " * 198 + b"}")
    return read_answer(sock, start)


def _oversized_head(port: int, cap: int) -> Answer:
    # One byte past the cap, head unfinished: nothing is left unread when the server answers.
    sock, start = _connect(port)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    sock.sendall(head + b"a" * (cap + 1 - len(head)))
    return read_answer(sock, start)


def _concurrently(cases: dict[str, Callable[[], Answer]]) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}

    def run(name: str) -> None:
        answers[name] = cases[name]()

    threads = [threading.Thread(target=run, args=(name,)) for name in cases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(answers) == set(cases), f"no answer for {set(cases) - set(answers)}"
    return answers


def test_late_heads_and_slow_bodies_get_408_and_close(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    # 3 s: the second-head case idles 1 s before its first request, 2 s inside the deadline.
    node = start_serve(tmp_path, database_url, "--header-timeout", "3")
    try:
        cases = {
            "partial head": lambda: _partial_head(node.port),
            "second head": lambda: _second_head_after_a_response(node.port),
            "slow body": lambda: _slow_body(node.port),
            "within grace": lambda: _late_but_within_grace(node.port),
            "oversized head": lambda: _oversized_head(node.port, 16 * 1024 + 8 * 1024),
        }
        answers = _concurrently(cases)

        head = answers["partial head"]
        _assert_timeout_answer(head, "request head not complete within 3 s")
        assert 3.0 <= head.elapsed < 3.0 + SLACK

        second = answers["second head"]
        _assert_timeout_answer(second, "request head not complete within 3 s")
        # counted from the end of the first response (>= 1 s after the accept), not the accept
        assert 1.0 + 3.0 <= second.elapsed < 1.0 + 3.0 + SLACK

        body = answers["slow body"]
        _assert_timeout_answer(body, "request body slower than 1024 bytes/s")
        assert GRACE <= body.elapsed < GRACE + SLACK

        graced = answers["within grace"]
        assert graced.status == 401, graced.raw  # the token endpoint's own answer
        assert graced.json["error_code"] == "client_auth_failed"

        big = answers["oversized head"]
        assert big.status == 431, big.raw
        assert big.headers["connection"] == "close"
        assert big.json["error_code"] == "headers_too_large"
        assert big.elapsed < SLACK
    finally:
        node.stop()


def _fill_to_the_cap(port: int, cap: int) -> list[socket.socket]:
    """``cap`` kept-alive connections, each known to the server (one answered request)."""
    held = []
    for _ in range(cap):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert keep_alive_get(sock).startswith(b"HTTP/1.1 200 ")
        held.append(sock)
    return held


def _assert_refused(port: int) -> None:
    sock, start = _connect(port)
    answer = read_answer(sock, start)
    assert answer.status == 503, answer.raw
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["connection"] == "close"
    assert answer.json["error_code"] == "unavailable"
    assert answer.elapsed < SLACK


def test_connections_past_the_cap_are_refused_and_the_open_ones_served(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    node = start_serve(tmp_path, database_url, "--max-connections", "20")
    try:
        held = _fill_to_the_cap(node.port, 20)
        _assert_refused(node.port)
        _assert_refused(node.port)
        for sock in held[:3]:  # the open ones are still served
            assert keep_alive_get(sock).startswith(b"HTTP/1.1 200 ")
        held.pop().close()  # one leaves: a newcomer gets in

        def admitted() -> bool:
            try:
                return httpx.get(f"{node.url}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(admitted, 5, "a connection under the cap")
        for sock in held:
            sock.close()
    finally:
        node.stop()


def test_sample_api_keeps_the_same_limits(tmp_path: Path) -> None:
    # The guard fetches discovery lazily: /healthz answers with no token server behind it.
    api = start_sample_api(
        tmp_path,
        f"http://127.0.0.1:{free_port()}",
        args=["--header-timeout", "1", "--max-connections", "3"],
    )
    try:
        head = _partial_head(api.port)
        _assert_timeout_answer(head, "request head not complete within 1 s")
        assert 1.0 <= head.elapsed < 1.0 + SLACK
        held = _fill_to_the_cap(api.port, 3)
        _assert_refused(api.port)
        assert keep_alive_get(held[0]).startswith(b"HTTP/1.1 200 ")
        for sock in held:
            sock.close()
    finally:
        api.stop()


def test_sample_api_reads_the_limits_from_the_environment(tmp_path: Path) -> None:
    api = start_sample_api(
        tmp_path,
        f"http://127.0.0.1:{free_port()}",
        env=clean_env(TAAP_MAX_CONNECTIONS="2"),
    )
    try:
        held = _fill_to_the_cap(api.port, 2)
        _assert_refused(api.port)
        for sock in held:
            sock.close()
    finally:
        api.stop()


def test_the_sandbox_servers_run_on_the_listener() -> None:
    # Default limits: an unfinished head past the header cap (16 KiB + 8 KiB) is refused.
    with running_sandbox() as box:
        for url in (box.token_url, box.api_url):
            port = int(url.rsplit(":", 1)[1])
            answer = _oversized_head(port, 16 * 1024 + 8 * 1024)
            assert answer.status == 431, answer.raw
            assert answer.json["error_code"] == "headers_too_large"
