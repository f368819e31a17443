"""The HTTP listener every taap server runs on: uvicorn's httptools protocol, with limits.

uvicorn closes an idle kept-alive connection, and nothing else: a client may take forever over
a request head or a body, may send a head of any size, and may hold as many connections as the
process has descriptors.
:class:`LimitedProtocol` adds, on each connection:

- a head deadline: the whole request head must arrive within ``header_timeout`` seconds of the
  accept, or of the end of the previous response on a kept-alive connection. It is a total, not
  an idle time: a byte now and then does not extend it;
- a body rate: a body has ``body_grace`` seconds, then must keep up ``body_min_rate`` bytes/s
  on average; each byte that arrives buys ``1 / body_min_rate`` seconds more;
- a connection cap: while ``max_connections`` connections are open, a new one gets a canned
  503 and is closed before a byte of it is read;
- a head size cap: httptools holds an unfinished head in memory however long it grows, so past
  ``max_head`` bytes (the header cap plus a request line) the head is refused with 431.

A late head or body is answered 408 ``request_timeout`` with ``Connection: close``, or, when an
answer to that request has already begun (or no byte of a head has come), the connection is
just closed. :class:`ListenerConfig` is a ``uvicorn.Config`` that installs the protocol with its
:class:`ListenerLimits`; it pickles, so the workers of a multi-process server get it whole.
docs/deploy.md says why this and not another server.
"""

from __future__ import annotations

import asyncio
import errno
import http
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any, Protocol

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from taap.errors import (
    ConfigurationError,
    HeadersTooLargeError,
    RequestTimeoutError,
    TaapError,
    UnavailableError,
)

__all__ = [
    "BODY_GRACE",
    "REQUEST_LINE_ALLOWANCE",
    "LimitSettings",
    "LimitedProtocol",
    "ListenerConfig",
    "ListenerLimits",
    "bind_socket",
]

#: seconds a request body may take before its average rate is held to the minimum
BODY_GRACE = 5.0
#: bytes a request line may add to the header cap before the listener stops reading a head
REQUEST_LINE_ALLOWANCE = 8 * 1024
_LOG = logging.getLogger("taap.listener")
# One summary line at most this often per server: a flood must not become a flood of lines.
_NOTICE_INTERVAL = 60.0


class LimitSettings(Protocol):
    """Where the limits are configured (``taap.settings.SharedSettings`` and its kin)."""

    @property
    def header_timeout(self) -> float: ...

    @property
    def body_min_rate(self) -> int: ...

    @property
    def max_connections(self) -> int: ...

    @property
    def max_headers(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """How long a request may take to arrive, and how many connections a server keeps."""

    header_timeout: float = 10.0
    body_min_rate: int = 1024
    max_connections: int = 1000
    #: request line and headers together, in bytes
    max_head: int = 16 * 1024 + REQUEST_LINE_ALLOWANCE
    body_grace: float = BODY_GRACE

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> ListenerLimits:
        """The limits ``settings`` configure (``TAAP_HEADER_TIMEOUT`` and the like)."""
        return cls(
            header_timeout=settings.header_timeout,
            body_min_rate=settings.body_min_rate,
            max_connections=settings.max_connections,
            max_head=settings.max_headers + REQUEST_LINE_ALLOWANCE,
        )


def _answer(error: TaapError, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A complete ``Connection: close`` response carrying ``error``'s JSON body."""
    body = json.dumps(error.to_dict(), separators=(",", ":")).encode("ascii")
    phrase = http.HTTPStatus(error.status_code).phrase
    lines = [f"HTTP/1.1 {error.status_code} {phrase}\r\n".encode("ascii")]
    for name, value in [
        *headers,
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]:
        lines.append(name + b": " + value + b"\r\n")
    return b"".join([*lines, b"\r\n", body])


# Built once: refusing a connection over the cap costs a write and a close, nothing more.
_OVER_CAP = _answer(
    UnavailableError("too many open connections; retry shortly"),
    [(b"retry-after", b"1")],
)


class _Tally:
    """Connections refused or timed out since the last summary line."""

    def __init__(self) -> None:
        self.refused = 0
        self.timed_out = 0
        self.said_at: float | None = None

    def count(self, now: float, limits: ListenerLimits, *, refused: int = 0, late: int = 0) -> None:
        self.refused += refused
        self.timed_out += late
        if self.said_at is not None and now - self.said_at < _NOTICE_INTERVAL:
            return
        self.said_at = now
        _LOG.warning(
            "listener: %d connections refused at the cap of %d, %d slow or oversized requests "
            "closed (head over %g s or body under %d bytes/s) since the last such line",
            self.refused,
            limits.max_connections,
            self.timed_out,
            limits.header_timeout,
            limits.body_min_rate,
        )
        self.refused = self.timed_out = 0


class ListenerConfig(uvicorn.Config):
    """``uvicorn.Config`` serving with :class:`LimitedProtocol` under ``limits``; every other
    keyword is uvicorn's."""

    def __init__(self, app: Any, *, limits: ListenerLimits, **options: Any) -> None:
        super().__init__(app, http=LimitedProtocol, **options)
        self.limits = limits
        self.tally = _Tally()


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head deadline, body rate and connection cap of
    the config's :class:`ListenerLimits` (the defaults under a plain ``uvicorn.Config``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits: ListenerLimits = getattr(config, "limits", None) or ListenerLimits()
        self._tally: _Tally | None = getattr(config, "tally", None)
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_begun = False  # a byte of the next request head has arrived
        self._head_bytes = 0  # what has come of it (at most one read more)
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_pending = False  # the last head read announced a body not yet complete
        self._body_since: float | None = None  # when its clock started (None: queued)
        self._body_bytes = 0

    # Connection -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self._limits.max_connections:
            self._refused = True
            self.transport = transport
            transport.write(_OVER_CAP)
            transport.close()
            self._count(refused=1)
            return
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            # The parser and the protocol refer to each other: free both now, not at a GC pass.
            self.parser = None  # type: ignore[assignment]
            return
        self._stop_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._head_begun and not self.transport.is_closing():
            # httptools keeps an unfinished head in memory however long it grows.
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_head:
                text = f"request head larger than {self._limits.max_head} bytes"
                self._count(late=1)
                self._close_with(HeadersTooLargeError(text))
                return
        # A head completed in this chunk with its body still to come: start the rate check.
        if (
            self._body_pending
            and self._body_timer is None
            and self._body_since is not None
            and not self.transport.is_closing()
        ):
            self._arm_body(self._body_since + self._limits.body_grace)

    def handle_websocket_upgrade(self) -> None:
        # The connection leaves HTTP: the WebSocket protocol that takes it over has its own rules.
        self._stop_timers()
        self._body_pending = False
        super().handle_websocket_upgrade()

    # Parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_begun = False
        self._head_bytes = 0
        super().on_headers_complete()
        self._body_pending = True
        self._body_bytes = 0
        # A pipelined request waits (unread) behind the one being answered: its clock starts
        # when its turn comes, in on_response_complete.
        self._body_since = None if self.pipeline else self.loop.time()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_pending = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._arm_head_if_idle()

    def on_response_complete(self) -> None:
        starting = self.pipeline[-1][0] if self.pipeline else None
        super().on_response_complete()
        if starting is not None and starting is self.cycle and self._body_pending:
            self._body_since = self.loop.time()
            self._arm_body(self._body_since + self._limits.body_grace)
        self._arm_head_if_idle()

    # Limits -------------------------------------------------------------------------------

    def _arm_head_if_idle(self) -> None:
        # The next head's deadline runs from the end of the response (and of the request's
        # body, when the answer came first); pipelined heads already read need none.
        cycle = self.cycle
        if (
            self._head_timer is None
            and not self._body_pending
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_late)

    def _arm_body(self, when: float) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_at(when, self._body_check)

    def _stop_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        self._count(late=1)
        # Nothing of a head yet (an idle connection): there is no request to answer.
        text = f"request head not complete within {self._limits.header_timeout:g} s"
        self._close_with(RequestTimeoutError(text) if self._head_begun else None)

    def _body_check(self) -> None:
        self._body_timer = None
        if not self._body_pending or self._body_since is None or self.transport.is_closing():
            return
        limits = self._limits
        if self.flow.read_paused:
            # The server stopped reading (the app has not taken what came): not the client's
            # delay, so that time does not count against it.
            self._body_since += 1.0
            self._arm_body(self.loop.time() + 1.0)
            return
        deadline = self._body_since + limits.body_grace + self._body_bytes / limits.body_min_rate
        if self.loop.time() < deadline:
            self._arm_body(deadline)
            return
        self._count(late=1)
        cycle = self.cycle
        answered = cycle is None or cycle.response_started
        text = f"request body slower than {limits.body_min_rate} bytes/s"
        self._close_with(None if answered else RequestTimeoutError(text))

    def _close_with(self, error: TaapError | None) -> None:
        """Answer ``error`` and close (``None``: just close)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app may be waiting for the body: it now hears a disconnect, and whatever it
            # still sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if error is not None:
            self.transport.write(_answer(error, list(self.server_state.default_headers)))
        self.transport.close()

    def _count(self, *, refused: int = 0, late: int = 0) -> None:
        if self._tally is not None:
            self._tally.count(self.loop.time(), self._limits, refused=refused, late=late)


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not yet listening), to hand to uvicorn.

    Raises:
        ConfigurationError: the address cannot be bound; the message says why in one line
            (``port 8080 on 127.0.0.1 is already in use``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(_bind_problem(exc, host, port)) from None
    sock.set_inheritable(True)  # the worker processes serve on it too
    return sock


def _bind_problem(exc: OSError, host: str, port: int) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} on {host} (ports below 1024 need it)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
