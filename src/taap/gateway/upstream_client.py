"""A small HTTP/1.1 client for the gateway's upstreams: a pool of kept-alive connections per
upstream, responses parsed by httptools (the C parser uvicorn uses) and read piece by piece.

Why not httpx: its HTTP/1.1 path (h11, a parser in Python, behind httpcore's pool) costs about
1 ms of CPU per call here and degrades with concurrent calls; through it the gateway forwarded
about an eighth of what the guard alone serves (docs/gateway.md, "Sizing"). This client does
what the gateway needs and nothing more: one request at a time per connection, the request
written at once (its body is already in memory), the answer's head awaited, its body handed
over as it arrives with the socket's reading paused while more than :data:`HIGH_WATER` bytes
wait, and the connection kept for the next call when the answer allows it.

A connection kept idle longer than ``keepalive_expiry`` is closed rather than reused, so that
the upstream's own idle timeout never closes one under a call. A reused connection that closes
before a byte of the answer came back was most likely closed by the upstream just then; an
idempotent call is then sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = [
    "HIGH_WATER",
    "Answer",
    "Connection",
    "ConnectionPool",
    "UpstreamBroken",
    "UpstreamRefused",
]

#: bytes of an answer held before the socket stops being read
HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})
#: bytes of an answer's head (status line and headers) accepted from an upstream
MAX_HEAD = 64 * 1024


class UpstreamRefused(OSError):
    """No connection could be opened to the upstream."""


class UpstreamBroken(ConnectionError):
    """The upstream closed the connection, or sent something that is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]


class Connection(asyncio.Protocol):
    """One connection to an upstream, carrying one call at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self.head_only = head_only
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.framed = False
        self.received = False
        self.answer: asyncio.Future[Answer] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.done = False
        self.keep_alive = True
        self.error: Exception | None = None
        self.stray = False
        self.readable = asyncio.Event()

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.answer is None:
            # Bytes on an idle connection (a server's farewell, say): never read them as the
            # answer to the next call.
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"not an HTTP/1.1 answer ({exc})"))
        if self.error is not None and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and self.answer.done() and not self.done and not self.framed:
            self.done = True  # an answer without length or chunks ends with the connection
            self.keep_alive = False
            self.readable.set()
            return
        if not self.done:
            self._fail(UpstreamBroken("the upstream closed the connection"))

    # httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            # A second answer to one call: the connection is no longer in step; drop it.
            self.stray = True
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.stray:
            return
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            raise httptools.HttpParserError("answer head too large")
        lower = name.lower()
        if lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value):
            self.framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.stray:
            return
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = []  # an interim answer (100 Continue): the real one follows
            return
        self.keep_alive = self.parser.should_keep_alive()
        if status in (204, 304):
            self.framed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(Answer(status, self.headers))
        if self.head_only:
            # The parser would wait for the body a HEAD answer announces but never sends.
            self.done = True
            self.keep_alive = False
            self.readable.set()

    def on_body(self, body: bytes) -> None:
        if self.head_only or self.stray:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.readable.set()

    def on_message_complete(self) -> None:
        if not self.stray and self.answer is not None and self.answer.done():
            self.done = True
            self.readable.set()

    # the call -----------------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self.keep_alive = False
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)
        self.readable.set()

    def send(self, data: bytes, *, head_only: bool) -> asyncio.Future[Answer]:
        self._reset(head_only=head_only)
        self.answer = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self.answer

    async def body(self) -> AsyncIterator[bytes]:
        """The answer's body, piece by piece as it arrives.

        Raises:
            UpstreamBroken: the connection ended before the body did.
        """
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.paused and self.buffered < _LOW_WATER and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                yield chunk
                continue
            if self.done:
                return
            if self.error is not None:
                raise self.error
            self.readable.clear()
            await self.readable.wait()

    def idle(self) -> None:
        """The call is over: from now on a byte from the upstream is out of turn."""
        self.answer = None
        self.idle_since = time.monotonic()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class ConnectionPool:
    """Kept-alive connections to one upstream, at most ``size`` at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        size: int = 100,
        keepalive_expiry: float = 4.0,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.size = size
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[Connection] = []
        self._slots: asyncio.Semaphore | None = None

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                Connection,
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        except OSError as exc:
            raise UpstreamRefused(exc.errno, f"cannot connect: {exc.strerror or exc}") from exc
        return protocol

    def _take_idle(self) -> Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            fresh = now - connection.idle_since < self.keepalive_expiry
            if not connection.closed and connection.keep_alive and fresh:
                connection.reused = True
                return connection
            connection.close()
        return None

    async def call(self, method: bytes, data: bytes) -> tuple[Connection, Answer]:
        """Send ``data`` (a whole request) and wait for the answer's head. The caller reads
        the body from the connection, then hands it back with :meth:`release`.

        Raises:
            UpstreamRefused: no connection could be opened.
            UpstreamBroken: the connection broke before the head arrived.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        await self._slots.acquire()
        try:
            head_only = method == b"HEAD"
            connection = self._take_idle() or await self._connect()
            try:
                return connection, await connection.send(data, head_only=head_only)
            except UpstreamBroken:
                connection.close()
                if not (connection.reused and not connection.received and method in _IDEMPOTENT):
                    raise
            except BaseException:
                connection.close()
                raise
            connection = await self._connect()  # the upstream closed an idle one just then
            try:
                return connection, await connection.send(data, head_only=head_only)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: Connection, *, complete: bool) -> None:
        """Hand back a connection; it is kept when its answer was read to the end and both
        sides allow keep-alive."""
        assert self._slots is not None
        self._slots.release()
        if complete and connection.done and connection.keep_alive and not connection.closed:
            connection.idle()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Close the idle connections (those in use close when released)."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
