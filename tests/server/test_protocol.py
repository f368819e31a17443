"""The coalescing uvicorn protocol on a real socket: every response shape still arrives whole
(HEAD, streamed bodies, 100-continue, pipelined and keep-alive requests, errors after start),
and a small response leaves in one write."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from taap.server.protocol import CoalescingHttpToolsProtocol, http_protocol

BODY = b'{"ok":true}'


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/broken":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after start")
    out = body or BODY
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(out)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=http_protocol(), log_level="critical", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.02)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _exchange(port: int, raw: bytes, *, until: bytes, pause_after: bytes | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        if pause_after is not None:
            head, _, rest = raw.partition(pause_after)
            conn.sendall(head + pause_after)
            interim = conn.recv(4096)
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            conn.sendall(rest)
        else:
            conn.sendall(raw)
        data = b""
        while until not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_the_coalescing_protocol_is_picked() -> None:
    assert http_protocol() is CoalescingHttpToolsProtocol


def test_plain_response(port: int) -> None:
    data = _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", until=BODY)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n" + BODY)


def test_head_gets_its_head(port: int) -> None:
    data = _exchange(port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", until=b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 11\r\n" in data
    assert data.endswith(b"\r\n\r\n")


def test_streamed_body_arrives_chunked(port: int) -> None:
    data = _exchange(port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", until=b"0\r\n\r\n")
    assert b"transfer-encoding: chunked" in data
    assert b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n" in data


def test_expect_100_continue(port: int) -> None:
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
    )
    data = _exchange(port, raw, until=b"hello", pause_after=b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"hello")


def test_pipelined_requests_answer_in_order(port: int) -> None:
    raw = (
        b"".join(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n" + n
            for n in (b"r1", b"r2")
        )
        + b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    data = _exchange(port, raw, until=BODY)
    assert data.count(b"HTTP/1.1 200 OK") == 4
    assert data.index(b"r1") < data.index(b"r2") < data.index(BODY)


def test_error_after_start_closes_the_connection(port: int) -> None:
    data = _exchange(port, b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n", until=b"\x00never")
    # uvicorn had sent the head before the failure; the connection then closes (no hang).
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_small_response_leaves_in_one_write(port: int) -> None:
    writes: list[bytes] = []

    closing: list[bool] = [False]

    class Recorder:
        def write(self, data: bytes) -> None:
            writes.append(bytes(data))

        def close(self) -> None:
            pass

        def is_closing(self) -> bool:
            return closing[0]

    from taap.server.protocol import _HeldHead

    held = _HeldHead(Recorder())  # type: ignore[arg-type]
    held.hold = True
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert writes == []
    held.write(BODY)
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\n" + BODY]
    held.hold = True
    held.write(b"HEAD-only\r\n\r\n")
    held.flush()
    held.flush()
    assert writes[1:] == [b"HEAD-only\r\n\r\n"]
    # A head held for a client that has gone is dropped, not written to a closing socket.
    held.hold = True
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    closing[0] = True
    held.flush()
    assert len(writes) == 2
