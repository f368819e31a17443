"""Forwarding a verified call to its product's upstream, and streaming the answer back.

This is the application :class:`~taap.resource.GuardMiddleware` hands verified calls to: it
finds the caller in ``scope["taap.principal"]`` and the body (already read within the body cap
by the guard) in ``receive``. Each upstream has its own pool of kept-alive connections
(:class:`Upstream`). The upstream's answer is passed on piece by piece as it arrives, never
held whole: the listener's write buffer pushes back, so a slow caller slows the reading of
the upstream instead of growing the gateway's memory.

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

import httpx

from taap.asgi import Receive, Scope, Send, raw_path_of, read_body, render_error, send_response
from taap.errors import TaapError, UpstreamTimeoutError, UpstreamUnavailableError
from taap.gateway.headers import Forwarding, RequestIds, response_headers, upstream_headers
from taap.gateway.metrics import forwarded, in_flight
from taap.gateway.settings import Networks
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal

__all__ = ["Forwarder", "Upstream"]

log = logging.getLogger("taap.gateway")

# Below the idle keep-alive timeout of common servers (node and uvicorn: 5 s), so the gateway
# never reuses a connection the upstream is closing at that moment.
KEEPALIVE_EXPIRY = 4.0


class Upstream:
    """One product's upstream: its origin and its pool of kept-alive connections."""

    def __init__(self, product: str, origin: str, *, timeout: float, connections: int) -> None:
        self.product = product
        self.origin = origin
        url = httpx.URL(origin)
        self.scheme = url.scheme
        self.host = url.host
        self.port = url.port
        self.host_header: bytes = url.netloc
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            follow_redirects=False,
            trust_env=False,
        )

    def url(self, raw_path: bytes, query: bytes) -> httpx.URL:
        """The upstream URL of a call: the call's path and query bytes, unchanged."""
        target = raw_path + b"?" + query if query else raw_path
        return httpx.URL(scheme=self.scheme, host=self.host, port=self.port, raw_path=target)

    async def reachable(self, timeout: float) -> bool:
        """Whether a TCP connection to the upstream opens within ``timeout`` seconds."""
        port = self.port or (443 if self.scheme == "https" else 80)
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(self.host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def aclose(self) -> None:
        await self.client.aclose()


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

    def _request(self, scope: Scope, principal: Principal, body: bytes) -> httpx.Request:
        upstream = self.upstreams[principal.product]
        headers = scope.get("headers") or []
        given = [value for name, value in headers if name == b"x-request-id"]
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        how = Forwarding(
            client_id=principal.client_id,
            product=principal.product,
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
        url = upstream.url(raw_path_of(scope), scope.get("query_string", b""))
        request = httpx.Request(scope["method"], url, headers=out, content=body)
        request.extensions["taap.request_id"] = how.request_id
        return request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope[PRINCIPAL_SCOPE_KEY]
        assert isinstance(principal, Principal)  # the guard stands in front: a wiring bug else
        body = await read_body(receive, self.max_body)
        request = self._request(scope, principal, body)
        upstream = self.upstreams[principal.product]
        in_flight(1)
        try:
            await self._forward(upstream, request, receive, send)
        finally:
            in_flight(-1)

    async def _forward(
        self, upstream: Upstream, request: httpx.Request, receive: Receive, send: Send
    ) -> None:
        product = upstream.product
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await upstream.client.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException) as exc:
            forwarded(product, "timeout", None)
            await _refuse(send, UpstreamTimeoutError(log_detail=_why(upstream, exc)), request)
            return
        except httpx.HTTPError as exc:
            forwarded(product, "unavailable", None)
            await _refuse(send, UpstreamUnavailableError(log_detail=_why(upstream, exc)), request)
            return
        forwarded(product, f"{response.status_code // 100}xx", time.perf_counter() - started)
        try:
            await self._stream(response, request, receive, send)
        finally:
            await response.aclose()

    async def _stream(
        self, response: httpx.Response, request: httpx.Request, receive: Receive, send: Send
    ) -> None:
        request_id = request.extensions["taap.request_id"]
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response_headers(response.headers.raw, request_id),
            }
        )
        # The body was read: the next message the server has for us is the caller leaving.
        gone = asyncio.ensure_future(receive())
        try:
            async for chunk in response.aiter_raw():
                if gone.done():
                    return  # the caller went away: stop reading the upstream
                async with asyncio.timeout(self.timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.HTTPError, TimeoutError) as exc:
            # The head is gone already: ending the connection early is all that is left.
            log.warning("upstream %s: answer cut short (%s)", request.url.host, _why(None, exc))
        finally:
            gone.cancel()


def _declares_body(headers: Any) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _why(upstream: Upstream | None, exc: BaseException) -> str:
    where = f"{upstream.origin}: " if upstream is not None else ""
    return f"{where}{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}"


async def _refuse(send: Send, error: TaapError, request: httpx.Request) -> None:
    log.warning("%s (%s)", error.error_code, error.log_detail)
    status, headers, body = render_error(error)
    headers.append((b"x-request-id", request.extensions["taap.request_id"]))
    await send_response(send, status, headers, body)
