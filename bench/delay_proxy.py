"""A TCP proxy that delays every chunk by a fixed time, to stand in for a network hop.

Usage: ``python bench/delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS``; prints
``ready`` once listening. Used by ``registry_get_client.py --pg-delay-ms`` to compare the
registry's I/O modes when PostgreSQL is not on the same machine.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while data := await reader.read(65536):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(port: int, host: str, target: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, target)
        await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, host, target, delay_ms = sys.argv[1:5]
    asyncio.run(main(int(listen), host, int(target), float(delay_ms) / 1000))
