"""uvicorn's httptools protocol with one socket write per small response instead of two.

uvicorn writes the response head on ``http.response.start`` and the body on
``http.response.body``: two ``send`` system calls, two loopback segments and two wake-ups of
the peer for a token response of ~2 KiB. Profiling the token server under load put ~16 % of
its wall time in those two writes, the first one costing most (it wakes the client). This
protocol holds the head until the first body write and sends both together. Nothing else
changes: same parser, same flow control, same keep-alive and pipelining.

It relies on two attributes of uvicorn's ``RequestResponseCycle`` (``transport``, ``send``),
checked when the class is picked (:func:`http_protocol`); if they are missing, uvicorn's own
``"httptools"`` protocol is used unchanged (and ``taap serve`` uses ``"auto"`` when httptools
itself is not installed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

__all__ = ["CoalescingHttpToolsProtocol", "http_protocol"]


class _HeldHead:
    """Transport proxy: keeps the response head back until the body's first write."""

    __slots__ = ("_head", "_transport", "hold")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self.hold = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.hold:
            self.hold = False
            self._head = bytes(data)
            return
        head = self._head
        if head is not None:
            self._head = None
            data = head + bytes(data)
        self._transport.write(data)

    def flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if not self._transport.is_closing():  # the client left: nothing to send to
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose responses leave in one write when they fit one."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._held = _HeldHead(transport)

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle is previous:
            return  # an upgrade: no new request/response cycle
        held = self._held
        cycle.transport = held  # type: ignore[assignment]  # duck-typed proxy
        send: Callable[[Any], Awaitable[None]] = cycle.send

        async def coalesced_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                held.hold = True
                try:
                    await send(message)
                finally:
                    held.hold = False
                return
            await send(message)
            if not message.get("more_body", False):
                held.flush()  # HEAD, or a body uvicorn did not write

        cycle.send = coalesced_send  # type: ignore[method-assign]  # this cycle only


def _compatible() -> bool:
    # The two cycle attributes this protocol swaps; a future uvicorn without them gets its
    # own protocol back.
    names = RequestResponseCycle.__init__.__code__.co_names
    return "transport" in names and callable(getattr(RequestResponseCycle, "send", None))


def http_protocol() -> type[Any] | str:
    """The ``http=`` argument for uvicorn: the coalescing protocol, or ``"httptools"``."""
    return CoalescingHttpToolsProtocol if _compatible() else "httptools"
