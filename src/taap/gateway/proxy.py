"""Forwarding a verified call to its product's upstream, and streaming the answer back.

This is the application :class:`~taap.resource.GuardMiddleware` hands verified calls to: it
finds the caller in ``scope["taap.principal"]`` and the body (already read within the body cap
by the guard) in ``receive``. Each upstream has its own pool of kept-alive connections
(:mod:`taap.gateway.upstream_client`). The upstream's answer is passed on piece by piece as it
arrives, never held whole: the listener's write buffer pushes back, and the upstream's socket
is not read while the caller has not taken what came, so a slow caller slows the upstream
instead of growing the gateway's memory.

Failures: a refused or broken connection before the response head is 502
``upstream_unavailable``; no head within the upstream timeout is 504 ``upstream_timeout``. Once
the head has been passed on, a failure can only end the connection early (the caller sees a
short body), which is also what happens when the caller does not take a piece within the
timeout. A caller that goes away stops the upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from typing import Any
from urllib.parse import quote, urlsplit

from taap.asgi import Receive, Scope, Send, raw_path_of, read_body, render_error, send_response
from taap.errors import TaapError, UpstreamTimeoutError, UpstreamUnavailableError
from taap.gateway.headers import Forwarding, RequestIds, response_headers, upstream_headers
from taap.gateway.metrics import forwarded, in_flight
from taap.gateway.upstream_client import (
    Answer,
    Connection,
    ConnectionPool,
    UpstreamBroken,
    UpstreamRefused,
)
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal
from taap.settings import Networks

__all__ = ["Forwarder", "Upstream"]

log = logging.getLogger("taap.gateway")

# Below the idle keep-alive timeout of common servers (node and uvicorn: 5 s), so the gateway
# never reuses a connection the upstream is closing at that moment.
KEEPALIVE_EXPIRY = 4.0
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


class Upstream:
    """One product's upstream: its origin and its pool of kept-alive connections."""

    def __init__(self, product: str, origin: str, *, timeout: float, connections: int) -> None:
        self.product = product
        self.origin = origin
        parts = urlsplit(origin)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.host_header = parts.netloc.encode("idna")
        self.pool = ConnectionPool(
            self.host,
            self.port,
            tls=self.scheme == "https",
            size=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )

    async def reachable(self, timeout: float) -> bool:
        """Whether a TCP connection to the upstream opens within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def close(self) -> None:
        self.pool.close()


class Forwarder:
    """The ASGI application behind the guard: verified call in, upstream's answer out."""

    def __init__(
        self,
        upstreams: dict[str, Upstream],
        *,
        timeout: float,
        max_body: int,
        networks: Networks = (),
        strip_authorization: bool = False,
    ) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.max_body = max_body
        self.networks = networks
        self.strip_authorization = strip_authorization
        self.ids = RequestIds()

    def _trusted(self, peer: str) -> bool:
        if self.networks == "*":
            return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def _request(self, scope: Scope, principal: Principal, body: bytes) -> tuple[bytes, bytes]:
        """The request for the upstream, whole, and its id."""
        upstream = self.upstreams[principal.product]
        headers = scope.get("headers") or []
        given = [value for name, value in headers if name == b"x-request-id"]
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        how = Forwarding(
            client_id=_text(principal.client_id),
            product=_text(principal.product),
            request_id=self.ids.pick(given),
            peer=peer,
            scheme=str(scope.get("scheme", "http")),
            upstream_host=upstream.host_header,
            trusted=self._trusted(peer),
            strip_authorization=self.strip_authorization,
        )
        out = upstream_headers(headers, how)
        if body or _declares_body(headers):
            out.append((b"content-length", str(len(body)).encode("ascii")))
        query = scope.get("query_string", b"")
        target = raw_path_of(scope) + (b"?" + query if query else b"")
        method = str(scope["method"]).encode("ascii")
        lines = [method, b" ", target, b" HTTP/1.1\r\n"]
        for name, value in out:
            lines += [name, b": ", value, b"\r\n"]
        lines += [b"\r\n", body]
        return b"".join(lines), how.request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope[PRINCIPAL_SCOPE_KEY]
        assert isinstance(principal, Principal)  # the guard stands in front: a wiring bug else
        body = await read_body(receive, self.max_body)
        data, request_id = self._request(scope, principal, body)
        upstream = self.upstreams[principal.product]
        in_flight(1)
        try:
            await self._forward(upstream, str(scope["method"]), data, request_id, receive, send)
        finally:
            in_flight(-1)

    async def _forward(
        self,
        upstream: Upstream,
        method: str,
        data: bytes,
        request_id: bytes,
        receive: Receive,
        send: Send,
    ) -> None:
        product = upstream.product
        started = time.perf_counter()
        error: TaapError
        try:
            async with asyncio.timeout(self.timeout):
                connection, answer = await upstream.pool.call(method.encode("ascii"), data)
        except TimeoutError:
            forwarded(product, "timeout", None)
            error = UpstreamTimeoutError(log_detail=f"{upstream.origin}: no answer in time")
        except (UpstreamRefused, UpstreamBroken, OSError) as exc:
            forwarded(product, "unavailable", None)
            error = UpstreamUnavailableError(log_detail=f"{upstream.origin}: {exc}")
        else:
            forwarded(product, f"{answer.status // 100}xx", time.perf_counter() - started)
            complete = False
            try:
                complete = await self._stream(connection, answer, request_id, receive, send)
            finally:
                upstream.pool.release(connection, complete=complete)
            return
        await _refuse(send, error, request_id)

    async def _stream(
        self,
        connection: Connection,
        answer: Answer,
        request_id: bytes,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Pass the answer on; True when all of it went. Each piece must come from the upstream
        and be taken by the caller within the upstream timeout."""
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": response_headers(answer.headers, request_id),
            }
        )
        # The body was read: the next message the server has for us is the caller leaving.
        # Watched only while more of the answer is to come (a short answer is all here).
        gone: asyncio.Future[Any] | None = None
        pieces = aiter(connection.body())
        try:
            while True:
                async with asyncio.timeout(self.timeout):
                    try:
                        chunk = await anext(pieces)
                    except StopAsyncIteration:
                        break
                    if gone is None:
                        if not connection.done:
                            gone = asyncio.ensure_future(receive())
                    elif gone.done():
                        return False  # the caller went away: stop reading the upstream
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        except (UpstreamBroken, OSError, TimeoutError) as exc:
            # The head is gone already: ending the connection early is all that is left.
            log.warning("upstream answer cut short: %s", exc or type(exc).__name__)
            return False
        finally:
            if gone is not None:
                gone.cancel()


def _text(value: str) -> str:
    """``value`` fit for a header: visible ASCII as is, anything else percent-encoded."""
    return value if all(c in _VISIBLE for c in value) else quote(value, safe=_VISIBLE)


def _declares_body(headers: Any) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


async def _refuse(send: Send, error: TaapError, request_id: bytes) -> None:
    log.warning("%s (%s)", error.error_code, error.log_detail)
    status, headers, body = render_error(error)
    headers.append((b"x-request-id", request_id))
    await send_response(send, status, headers, body)
