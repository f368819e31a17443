"""Raw-socket clients for the listener tests: a complete answer read to EOF, and a crowd of
connections that dribble a request head or body one byte at a time."""

from __future__ import annotations

import json
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Answer",
    "Dribbler",
    "dribble",
    "keep_alive_get",
    "open_files",
    "read_answer",
    "rss_bytes",
]

TOKEN_HEAD = (
    b"POST /oauth2/v2/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
)
# A head that never ends within a test: one byte of it goes out per interval.
ENDLESS_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000


@dataclass
class Answer:
    """What came back on a connection before the server closed it."""

    raw: bytes
    elapsed: float  # seconds from just before the connect (or the given start) to EOF

    @property
    def status(self) -> int:
        return int(self.raw.split(b" ", 2)[1])

    @property
    def headers(self) -> dict[str, str]:
        head = self.raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
        return {k.lower(): v for k, _, v in (line.partition(": ") for line in head)}

    @property
    def json(self) -> Any:
        return json.loads(self.raw.partition(b"\r\n\r\n")[2])


def read_answer(sock: socket.socket, start: float, timeout: float = 20.0) -> Answer:
    """Read ``sock`` until the server closes it (a reset counts as the end too)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return Answer(data, time.monotonic() - start)


def keep_alive_get(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One GET on a kept-alive connection; the complete response (``Content-Length`` framed)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


@dataclass
class Dribbler:
    """One connection sending ``pending`` one byte per interval, and what it got back."""

    kind: str  # "head" or "body"
    sock: socket.socket
    opened: float
    pending: bytes
    closed: float | None = None
    received: bytes = field(default=b"", repr=False)

    def close(self, now: float) -> None:
        self.closed = now
        self.sock.close()


def _open(port: int, kind: str) -> Dribbler:
    opened = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if kind == "body":  # the whole head at once, then the body byte by byte
        sock.sendall(TOKEN_HEAD)
        pending = b"{" + b" " * 198 + b"}"
    else:
        pending = ENDLESS_HEAD
    sock.setblocking(False)
    return Dribbler(kind, sock, opened, pending)


def _poll(crowd: list[Dribbler], wait: float) -> None:
    """Read what the server sent to the open ones; note those it closed."""
    open_ = {d.sock: d for d in crowd if d.closed is None}
    if not open_:
        return
    readable, _, _ = select.select(list(open_), [], [], wait)
    for sock in readable:
        dribbler = open_[sock]
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BlockingIOError):
            chunk = b""
        if chunk:
            dribbler.received += chunk
        else:
            dribbler.close(time.monotonic())


def dribble(
    port: int, *, heads: int, bodies: int, interval: float, give_up: float
) -> list[Dribbler]:
    """Open ``heads`` + ``bodies`` connections and feed each one byte every ``interval`` s
    until the server has closed them all, or ``give_up`` seconds have passed."""
    crowd = [_open(port, "head") for _ in range(heads)] + [
        _open(port, "body") for _ in range(bodies)
    ]
    start = time.monotonic()
    next_send = start
    while any(d.closed is None for d in crowd) and time.monotonic() - start < give_up:
        now = time.monotonic()
        if now >= next_send:
            next_send += interval
            for d in crowd:
                if d.closed is None and d.pending:
                    try:
                        d.sock.send(d.pending[:1])
                        d.pending = d.pending[1:]
                    except OSError:  # reset or broken pipe: the server has closed it
                        d.close(now)
        _poll(crowd, max(0.0, min(0.05, next_send - time.monotonic())))
    for d in crowd:
        if d.closed is None:
            d.sock.close()
    return crowd


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (``VmRSS`` of /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_files(pid: int) -> int:
    """File descriptors ``pid`` holds open (each connection is one)."""
    return len(os.listdir(f"/proc/{pid}/fd"))
