"""The gateway's HTTP/1.1 client against a scripted upstream on a loopback socket: answers of
every framing, interim answers, stray bytes, idle connections closed by the upstream, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from taap.gateway.upstream_client import ConnectionPool, UpstreamBroken, UpstreamRefused

GET = b"GET /x HTTP/1.1\r\nhost: u\r\n\r\n"
POST = b"POST /x HTTP/1.1\r\nhost: u\r\ncontent-length: 2\r\n\r\n{}"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

# One script per connection: what to send back for each request read (None: close instead of
# answering; an answer ending in CLOSE: send it, then close).
Script = list[bytes | None]
CLOSE = b"<close>"
LATER = b"<later>"  # an answer starting so is sent unasked, a moment after the previous one


@asynccontextmanager
async def upstream(scripts: list[Script]) -> AsyncIterator[tuple[int, list[int]]]:
    """A server answering the n-th connection with ``scripts[n]``; yields its port and the
    number of requests each connection read."""
    served: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        index = len(served)
        served.append(0)
        script = scripts[index] if index < len(scripts) else [OK] * 100
        try:
            for answer in script:
                if answer is not None and answer.startswith(LATER):
                    await asyncio.sleep(0.05)
                    writer.write(answer.removeprefix(LATER))
                    continue
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                served[index] += 1
                if answer is None:
                    break
                writer.write(answer.removesuffix(CLOSE))
                await writer.drain()
                if answer.endswith(CLOSE):
                    break
            else:
                await reader.read()  # keep it open until the client closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, served
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0.05)  # the handlers see their connections end


async def body_of(pool: ConnectionPool, method: bytes, data: bytes) -> tuple[int, bytes]:
    connection, answer = await pool.call(method, data)
    parts = [chunk async for chunk in connection.body()]
    pool.release(connection, complete=True)
    return answer.status, b"".join(parts)


async def test_framings_and_reuse() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with upstream([[OK, chunked, empty, OK]]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port)
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert await body_of(pool, b"GET", GET) == (200, b"abcde")
        assert await body_of(pool, b"GET", GET) == (204, b"")
        assert await body_of(pool, b"POST", POST) == (200, b"ok")
        assert served == [4]  # one connection, kept alive throughout
        pool.close()


async def test_an_answer_ended_by_the_close_and_the_next_call() -> None:
    eof = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end" + CLOSE
    async with upstream([[eof], [OK]]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port)
        assert await body_of(pool, b"GET", GET) == (200, b"until the end")
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert served == [1, 1]
        pool.close()


async def test_interim_answers_are_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    async with upstream([[answer]]) as (port, _):
        pool = ConnectionPool("127.0.0.1", port)
        assert await body_of(pool, b"POST", POST) == (200, b"ok")
        pool.close()


async def test_a_second_answer_to_one_call_drops_the_connection() -> None:
    async with upstream([[OK + OK], [OK]]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port)
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert served == [1, 1]  # the second call went on a new connection
        pool.close()


async def test_bytes_on_an_idle_connection_are_never_an_answer() -> None:
    farewell = LATER + b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n"
    async with upstream([[OK, farewell], [OK]]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port)
        connection, answer = await pool.call(b"GET", GET)
        body = [chunk async for chunk in connection.body()]
        assert (answer.status, body) == (200, [b"ok"])
        pool.release(connection, complete=True)
        await asyncio.sleep(0.1)
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert served == [1, 1]
        pool.close()


async def test_an_idle_connection_closed_by_the_upstream() -> None:
    async with upstream([[OK, None], [OK, None], [OK]]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port)
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        # The upstream closes the kept connection as the next call goes out: GET is sent
        # once more on a new connection ...
        assert await body_of(pool, b"GET", GET) == (200, b"ok")
        assert served == [2, 1]
        # ... a POST is not: the upstream may have acted on it.
        with pytest.raises(UpstreamBroken):
            await body_of(pool, b"POST", POST)
        pool.close()


async def test_refused_and_oversized_heads() -> None:
    async with upstream([]) as (port, _):
        pass
    pool = ConnectionPool("127.0.0.1", port)
    with pytest.raises(UpstreamRefused):
        await pool.call(b"GET", GET)
    async with upstream([[b"SMTP ready\r\n\r\n"]]) as (port, _):
        pool = ConnectionPool("127.0.0.1", port)
        with pytest.raises(UpstreamBroken, match=r"not an HTTP/1\.1 answer"):
            await pool.call(b"GET", GET)
        pool.close()
    huge = b"HTTP/1.1 200 OK\r\n" + b"x-big: " + b"a" * 70_000 + b"\r\ncontent-length: 0\r\n\r\n"
    async with upstream([[huge]]) as (port, _):
        pool = ConnectionPool("127.0.0.1", port)
        with pytest.raises(UpstreamBroken):
            await pool.call(b"GET", GET)
        pool.close()


async def test_the_pool_size_bounds_calls_in_flight() -> None:
    async with upstream([[OK] * 5]) as (port, served):
        pool = ConnectionPool("127.0.0.1", port, size=1)
        first, _ = await pool.call(b"GET", GET)
        second: Callable[[], object] = lambda: pool.call(b"GET", GET)  # noqa: E731
        waiting = asyncio.ensure_future(second())  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        assert not waiting.done()  # no second connection while the first is in use
        _ = [chunk async for chunk in first.body()]
        pool.release(first, complete=True)
        connection, answer = await asyncio.wait_for(waiting, 5)
        assert answer.status == 200
        pool.release(connection, complete=False)
        assert served == [2]
        pool.close()
