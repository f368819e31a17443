"""taap.listener in process, on a real uvicorn server on loopback with small limits and a short
body grace: the cases a token server cannot easily show (an answer sent before the body, a
server that stops reading, pipelining, the log line of a flood)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from taap.listener import ListenerConfig, ListenerLimits, bind_socket

SLACK = 3.0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/early`` answers before reading the body; ``/lazy`` waits 1.5 s, then reads it;
    anything else reads the body and answers its length."""
    assert scope["type"] == "http"
    if scope["path"] == "/lazy":
        await asyncio.sleep(1.5)
    size = 0
    if scope["path"] != "/early":
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(limits: ListenerLimits) -> Iterator[int]:
    """The app on a free loopback port under ``limits``, in a thread of its own."""
    sock = bind_socket("127.0.0.1", 0)
    config = ListenerConfig(app, limits=limits, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _post_head(path: str, length: int, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n".encode()
        + extra
        + b"\r\n"
    )


def _read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(15)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


GRACE = 0.5
LIMITS = ListenerLimits(header_timeout=2.0, body_min_rate=1000, body_grace=GRACE)


def test_a_body_above_the_minimum_rate_is_served_past_the_grace() -> None:
    with serving(LIMITS) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_post_head("/echo", 4000, b"Connection: close\r\n"))
        for _ in range(4):  # 4000 bytes/s for 1 s: four times the minimum, twice the grace
            sock.sendall(b"x" * 1000)
            time.sleep(0.25)
        answer = _read_to_eof(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(b"\r\n\r\n4000")


def test_a_slow_body_after_an_early_answer_is_cut_without_a_second_answer() -> None:
    with serving(LIMITS) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.monotonic()
        sock.sendall(_post_head("/early", 1000) + b"x")
        answer = _read_to_eof(sock)
        elapsed = time.monotonic() - start
    # The one answer the app gave, then the close once the body fell behind; no 408 after it.
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.count(b"HTTP/1.1") == 1
    assert GRACE <= elapsed < GRACE + SLACK


def test_time_the_server_does_not_read_is_not_held_against_the_client() -> None:
    fast = ListenerLimits(header_timeout=2.0, body_min_rate=1_000_000, body_grace=GRACE)
    size = 400_000
    with serving(fast) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        # The app takes 1.5 s to read: past 64 KiB uvicorn stops reading, and the rest waits.
        sock.sendall(_post_head("/lazy", size, b"Connection: close\r\n") + b"x" * size)
        answer = _read_to_eof(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(f"\r\n\r\n{size}".encode())


def test_pipelined_requests_with_bodies_are_all_answered() -> None:
    with serving(LIMITS) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        requests = [_post_head("/echo", n) + b"y" * n for n in (10, 20)]
        requests.append(_post_head("/echo", 30, b"Connection: close\r\n") + b"z" * 30)
        sock.sendall(b"".join(requests))
        answer = _read_to_eof(sock)
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer
    assert answer.endswith(b"\r\n\r\n30")


def _get(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\n0"):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_a_flood_is_summed_up_in_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    tight = ListenerLimits(header_timeout=1.0, max_connections=2)
    caplog.set_level(logging.WARNING, logger="taap.listener")
    with serving(tight) as port:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        for sock in held:  # each one answered, so each one counted
            assert _get(sock).startswith(b"HTTP/1.1 200 ")
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as extra:
                assert _read_to_eof(extra).startswith(b"HTTP/1.1 503 ")
        for sock in held:  # idle: closed silently at the next head's deadline
            assert _read_to_eof(sock) == b""
            sock.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "taap.listener"]
    assert len(lines) == 1, lines
    assert "refused at the cap of 2" in lines[0]
