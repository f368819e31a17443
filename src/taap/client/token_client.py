"""``TokenClient``: steps 1-2 over HTTP, with retries and a single-flight token cache."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import httpx

from taap.client.cached_token import Clock, TokenCache
from taap.client.credentials import ClientCredentials
from taap.client.flows import Finished, Wait, advance
from taap.client.retry import RETRY_STATUSES, RetryPolicy
from taap.client.token_request_builder import PreparedRequest, TokenEndpoint, build_token_request
from taap.client.token_response import Token, token_from_response
from taap.client.wire import error_from_response, transport_error
from taap.core.pop import DEFAULT_TTL

__all__ = ["RETRYABLE_EXCEPTIONS", "TokenClient"]

#: Failures that leave the token request unanswered; asking again with a fresh PoP is safe.
RETRYABLE_EXCEPTIONS: tuple[type[httpx.HTTPError], ...] = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
)


class TokenClient:
    """Gets tokens from a TAAP token server (v2 or v6) and caches them.

    ``token()`` / ``atoken()`` return the cached token or fetch one (one fetch at a time);
    ``fetch()`` / ``afetch()`` always ask the server. Every attempt carries a fresh PoP.
    ``http`` / ``async_http`` let a caller supply the HTTP clients (transports, proxies, TLS);
    by default each is created on first use and closed by :meth:`close` / :meth:`aclose`.
    """

    def __init__(
        self,
        endpoint: TokenEndpoint | str,
        credentials: ClientCredentials,
        *,
        margin: float = 60.0,
        clock: Clock = time.time,
        retry: RetryPolicy | None = None,
        pop_ttl: int = DEFAULT_TTL,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = TokenEndpoint(url=endpoint) if isinstance(endpoint, str) else endpoint
        self.credentials = credentials
        self.clock = clock
        self.retry = retry if retry is not None else RetryPolicy()
        self.pop_ttl = pop_ttl
        self.cache = TokenCache(margin=margin, clock=clock)
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._http, self._own_http = http, http is None
        self._async_http, self._own_async_http = async_http, async_http is None
        self._timeout = timeout
        self._create_lock = threading.Lock()  # two threads must not each create a client

    # -- sans-I/O pieces: the flow and its parts ------------------------------------------

    def prepare(self) -> PreparedRequest:
        """A token request with a fresh PoP, stamped by this client's clock.

        Raises:
            RequestMalformedError: the token URL is ambiguous (A6).
        """
        return build_token_request(
            self.endpoint, self.credentials, now=self.clock(), ttl=self.pop_ttl
        )

    def token_request(self) -> tuple[httpx.Request, float]:
        """The next token request as an ``httpx.Request``, and when it was signed."""
        sent_at = self.clock()
        prepared = self.prepare()
        return _to_httpx(prepared), sent_at

    def accept(self, response: httpx.Response, sent_at: float) -> Token:
        """Parse a token response and cache the token.

        Raises:
            TaapError: the server's A6 error, typed (``error_from_wire``).
            TransportError: a 200 without a usable token.
        """
        token = token_from_response(
            response.status_code, response.headers, response.content, obtained_at=sent_at
        )
        self.cache.store(token)
        return token

    def _delay_or_raise(self, retry: int, outcome: httpx.Response | httpx.HTTPError) -> float:
        # Wait (returns seconds) or give up (raises).
        if isinstance(outcome, httpx.HTTPError):
            delay = self.retry.delay(retry, None)
            if delay is None:
                raise transport_error(self._target, outcome, attempts=retry + 1) from outcome
            return delay
        error = error_from_response(outcome.status_code, outcome.headers, outcome.content)
        delay = self.retry.delay(retry, error.retry_after)
        if delay is None:
            raise error
        return delay

    def fetch_flow(self) -> Generator[httpx.Request | Wait, Any, Token]:
        """Steps 1-2 as a flow (:mod:`taap.client.flows`): ask, and retry 429/503 and failures.

        Send back each request's response, or the ``httpx.HTTPError`` that kept it from being
        answered; every retry is a new request with a fresh PoP. The token is cached.

        Raises:
            TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
        """
        retry = 0
        while True:
            request, sent_at = self.token_request()
            outcome: httpx.Response | httpx.HTTPError = yield request
            if isinstance(outcome, httpx.Response):
                outcome.read()  # a flow driven by hand may be handed a streamed response
                if outcome.status_code not in RETRY_STATUSES:
                    return self.accept(outcome, sent_at)
            elif not isinstance(outcome, RETRYABLE_EXCEPTIONS):
                raise transport_error(self._target, outcome) from outcome
            yield Wait(self._delay_or_raise(retry, outcome))
            retry += 1

    def token_flow(self, stale: Token | None = None) -> Generator[httpx.Request | Wait, Any, Token]:
        """The usable token other than ``stale``, else :meth:`fetch_flow`; takes no lock."""
        if stale is not None:
            self.cache.invalidate(stale)
        token = self.cache.current()
        if token is None:
            token = yield from self.fetch_flow()
        return token

    @property
    def _target(self) -> str:
        return f"the token server {self.endpoint.url}"

    # -- synchronous ---------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        with self._create_lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self._timeout)
            return self._http

    def _send(self, request: httpx.Request) -> httpx.Response | httpx.HTTPError:
        try:
            return self._client().send(request)
        except httpx.HTTPError as exc:
            return exc

    def fetch(self) -> Token:
        """Ask the token server now, retrying 429/503 and connection failures.

        Raises:
            TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
        """
        flow = self.fetch_flow()
        reply: httpx.Response | httpx.HTTPError | None = None
        while not isinstance(step := advance(flow, reply), Finished):
            if isinstance(step, Wait):
                self._sleep(step.seconds)
                reply = None
            else:
                reply = self._send(step)
        return step.value

    def token(self) -> Token:
        """The cached token, or a new one (one thread fetches, the others wait for it).

        Raises:
            TaapError: as :meth:`fetch`.
        """
        return self.cache.get(self.fetch)

    def refresh(self, stale: Token | None) -> Token:
        """A token other than ``stale`` (rejected by an API): fetch unless a peer already did.

        ``None`` (nothing rejected yet) is :meth:`token`.

        Raises:
            TaapError: as :meth:`fetch`.
        """
        if stale is not None:
            self.cache.invalidate(stale)
        return self.token()

    def close(self) -> None:
        """Close the synchronous HTTP client if this object created it."""
        if self._http is not None and self._own_http:
            self._http.close()
            self._http = None

    def __enter__(self) -> TokenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asynchronous --------------------------------------------------------------------

    def _async_client(self) -> httpx.AsyncClient:
        if self._async_http is None:
            self._async_http = httpx.AsyncClient(timeout=self._timeout)
        return self._async_http

    async def _asend(self, request: httpx.Request) -> httpx.Response | httpx.HTTPError:
        try:
            return await self._async_client().send(request)
        except httpx.HTTPError as exc:
            return exc

    async def afetch(self) -> Token:
        """Async :meth:`fetch`, with the same retries and errors."""
        flow = self.fetch_flow()
        reply: httpx.Response | httpx.HTTPError | None = None
        while not isinstance(step := advance(flow, reply), Finished):
            if isinstance(step, Wait):
                await self._async_sleep(step.seconds)
                reply = None
            else:
                reply = await self._asend(step)
        return step.value

    async def atoken(self) -> Token:
        """Async :meth:`token` (one task fetches, the others wait for it).

        Raises:
            TaapError: as :meth:`afetch`.
        """
        return await self.cache.aget(self.afetch)

    async def arefresh(self, stale: Token | None) -> Token:
        """Async :meth:`refresh`.

        Raises:
            TaapError: as :meth:`afetch`.
        """
        if stale is not None:
            self.cache.invalidate(stale)
        return await self.atoken()

    async def aclose(self) -> None:
        """Close the asynchronous HTTP client if this object created it."""
        if self._async_http is not None and self._own_async_http:
            await self._async_http.aclose()
            self._async_http = None

    async def __aenter__(self) -> TokenClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"TokenClient(url={self.endpoint.url!r}, "
            f"version={self.endpoint.effective_version!r}, "
            f"client_id={self.credentials.client_id!r})"
        )


def _to_httpx(prepared: PreparedRequest) -> httpx.Request:
    return httpx.Request(
        prepared.method, prepared.url, headers=list(prepared.headers), content=prepared.body
    )
