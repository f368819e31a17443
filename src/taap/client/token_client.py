"""``TokenClient``: steps 1-2 over HTTP, with retries and a single-flight token cache, and the
revocation of its tokens (RFC 7009)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import httpx

from taap.client.cached_token import Clock, TokenCache
from taap.client.credentials import ClientCredentials
from taap.client.flows import RETRYABLE_EXCEPTIONS, Wait, adrive, drive, send_flow, to_httpx
from taap.client.retry import RetryPolicy
from taap.client.revocation import (
    REVOCATION_PATH,
    build_revocation_request,
    check_url,
    server_endpoint,
)
from taap.client.token_request_builder import PreparedRequest, TokenEndpoint, build_token_request
from taap.client.token_response import Token, token_from_response
from taap.client.wire import error_from_response
from taap.core.pop import DEFAULT_TTL

__all__ = ["RESUBSCRIBE_AGE", "RETRYABLE_EXCEPTIONS", "TokenClient"]

#: Seconds a token must have been held before a 403 ``not_subscribed`` fetches a new one: a
#: younger token was issued from the subscriptions of that moment, so a new one would not
#: differ unless the change is newer still (docs/client.md, "Revocation and changed
#: subscriptions").
RESUBSCRIBE_AGE = 5.0


class TokenClient:
    """Gets tokens from a TAAP token server (v2 or v6), caches them, and revokes them.

    ``token()`` / ``atoken()`` return the cached token or fetch one (one fetch at a time);
    ``fetch()`` / ``afetch()`` always ask the server; ``revoke()`` / ``arevoke()`` revoke a
    token (by default the cached one) at ``revocation_url``, by default the token server's
    ``/oauth2/v1/revoke`` (:func:`~taap.client.revocation.server_endpoint`). Every attempt
    carries a fresh PoP. ``http`` / ``async_http`` let a caller supply the HTTP clients
    (transports, proxies, TLS); by default each is created on first use and closed by
    :meth:`close` / :meth:`aclose`. ``resubscribe_age``: see :meth:`may_predate_subscription`.
    ``cache`` replaces the in-memory :class:`TokenCache` (``margin`` and ``clock`` are then
    the cache's own), e.g. with a :class:`~taap.client.shell.FileTokenCache` kept across runs.
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
        revocation_url: str | None = None,
        resubscribe_age: float = RESUBSCRIBE_AGE,
        cache: TokenCache | None = None,
    ) -> None:
        self.endpoint = TokenEndpoint(url=endpoint) if isinstance(endpoint, str) else endpoint
        self.credentials = credentials
        self.clock = clock
        self.retry = retry if retry is not None else RetryPolicy()
        self.pop_ttl = pop_ttl
        self.cache = cache if cache is not None else TokenCache(margin=margin, clock=clock)
        if resubscribe_age < 0:
            raise ValueError("resubscribe_age must not be negative")
        self.resubscribe_age = resubscribe_age
        self.revocation_url = (
            check_url(revocation_url, "revocation_url")
            if revocation_url is not None
            else server_endpoint(self.endpoint.url, REVOCATION_PATH)
        )
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
            RequestMalformedError: the token URL is ambiguous (docs/protocol.md#errors).
        """
        return build_token_request(
            self.endpoint, self.credentials, now=self.clock(), ttl=self.pop_ttl
        )

    def token_request(self) -> tuple[httpx.Request, float]:
        """The next token request as an ``httpx.Request``, and when it was signed."""
        sent_at = self.clock()
        prepared = self.prepare()
        return to_httpx(prepared), sent_at

    def accept(self, response: httpx.Response, sent_at: float) -> Token:
        """Parse a token response and cache the token.

        Raises:
            TaapError: the server's error, typed (``error_from_wire``).
            TransportError: a 200 without a usable token.
        """
        token = token_from_response(
            response.status_code, response.headers, response.content, obtained_at=sent_at
        )
        self.cache.store(token)
        return token

    def fetch_flow(self) -> Generator[httpx.Request | Wait, Any, Token]:
        """Steps 1-2 as a flow (:mod:`taap.client.flows`): ask, and retry 429/503 and failures.

        Send back each request's response, or the ``httpx.HTTPError`` that kept it from being
        answered; every retry is a new request with a fresh PoP. The token is cached.

        Raises:
            TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
        """
        signed_at: list[float] = []

        def next_request() -> httpx.Request:
            request, sent_at = self.token_request()
            signed_at.append(sent_at)
            return request

        answer = yield from send_flow(next_request, self.retry, self._target)
        return self.accept(answer, signed_at[-1])

    def may_predate_subscription(self, token: Token) -> bool:
        """Whether ``token``, refused 403 ``not_subscribed``, is worth replacing: it was
        obtained at least ``resubscribe_age`` seconds ago, so a subscription made since
        could be missing from it. A younger token is as new as a fetch could give."""
        return self.clock() - token.obtained_at >= self.resubscribe_age

    def revocation_request(self, token: str, token_type_hint: str | None = None) -> httpx.Request:
        """The RFC 7009 request revoking ``token``, with a fresh PoP (no cache change).

        Raises:
            ValueError: an empty token.
        """
        prepared = build_revocation_request(
            self.revocation_url,
            self.credentials,
            token,
            token_type_hint=token_type_hint,
            now=self.clock(),
            ttl=self.pop_ttl,
        )
        return to_httpx(prepared)

    def revoke_flow(
        self, token: str | None = None, *, token_type_hint: str | None = None
    ) -> Generator[httpx.Request | Wait, Any, bool]:
        """Revocation as a flow, retried like :meth:`fetch_flow`.

        ``token`` ``None`` is the cached token (usable or not); ``False`` when there is none
        and nothing was sent. A cached token that is the one revoked (by its access or ID
        token) is dropped first, so no call signs with it again.

        Raises:
            ValueError: an empty token.
            TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
        """
        held = self.cache.held()
        if token is None:
            if held is None:
                return False
            token = held.access_token
        if held is not None and token in (held.access_token, held.id_token):
            self.cache.invalidate(held)
        value = token
        answer = yield from send_flow(
            lambda: self.revocation_request(value, token_type_hint),
            self.retry,
            f"the token server {self.revocation_url}",
        )
        if answer.status_code != 200:
            raise error_from_response(answer.status_code, answer.headers, answer.content)
        return True

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
        return drive(self.fetch_flow(), self._send, self._sleep)

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

    def revoke(self, token: str | None = None, *, token_type_hint: str | None = None) -> bool:
        """Revoke ``token`` (an access or ID token of this client), by default the cached one,
        which is dropped from the cache. ``False`` when there was nothing to revoke.

        The server answers 200 for a token it does not know, has already revoked or that is
        another client's (RFC 7009 section 2.2): ``True`` says it was asked, not what it knew.

        Raises:
            ValueError: an empty token.
            TaapError: the server's error (``client_auth_failed``, a PoP error ... typed), or
                ``TransportError`` once retries ran out.
        """
        return drive(
            self.revoke_flow(token, token_type_hint=token_type_hint), self._send, self._sleep
        )

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
        return await adrive(self.fetch_flow(), self._asend, self._async_sleep)

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

    async def arevoke(
        self, token: str | None = None, *, token_type_hint: str | None = None
    ) -> bool:
        """Async :meth:`revoke`, with the same retries and errors."""
        flow = self.revoke_flow(token, token_type_hint=token_type_hint)
        return await adrive(flow, self._asend, self._async_sleep)

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
