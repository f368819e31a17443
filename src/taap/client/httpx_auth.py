"""``PopAuth``: steps 3-4 on every request of an ``httpx.Client`` or ``httpx.AsyncClient``.

``auth_flow`` is the plain httpx generator (ARCHITECTURE.md idiom 2): without a cached token it
yields the token request, reads the answer, then signs and yields the real request, and on a
401 ``invalid_token`` gets a new token once and retries once. It does no waiting and takes no
lock, so it can be driven by hand.

httpx calls the ``sync_auth_flow`` / ``async_auth_flow`` overrides instead. They obtain the token
through the :class:`~taap.client.token_client.TokenClient` (its own HTTP client, retries and a
single-flight lock: many threads or tasks, one token request) and retry 429/503 answers of the
API with a fresh PoP after the ``Retry-After`` wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import httpx

from taap.client.credentials import ClientCredentials
from taap.client.outcome import Attempt, is_invalid_token, next_step
from taap.client.retry import RetryPolicy
from taap.client.signing import DEFAULT_CONTENT_TYPE, api_pop
from taap.client.token_client import TokenClient
from taap.client.token_request_builder import TokenEndpoint
from taap.client.token_response import Token

__all__ = ["PopAuth"]


class PopAuth(httpx.Auth):
    """httpx authentication performing TAAP steps 3-4 (and 1-2 when a token is needed)."""

    requires_request_body = True

    def __init__(
        self,
        tokens: TokenClient,
        *,
        signed_headers: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self.tokens = tokens
        self.signed_headers = tuple(signed_headers)
        self.retry = retry if retry is not None else tokens.retry
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep or asyncio.sleep

    @classmethod
    def from_key_file(
        cls,
        token_url: str | TokenEndpoint,
        *,
        client_id: str,
        client_secret: str,
        key_path: str | Path,
        password: str | bytes | None = None,
        **token_options: Any,
    ) -> PopAuth:
        """Quick start: credentials, a key file (loaded once) and the token endpoint URL.

        Raises:
            KeyFormatError: the key cannot be loaded.
            OSError: the key file cannot be read.
        """
        credentials = ClientCredentials.from_key_file(
            client_id=client_id, client_secret=client_secret, key_path=key_path, password=password
        )
        return cls(TokenClient(token_url, credentials, **token_options))

    def sign(self, request: httpx.Request, token: Token) -> httpx.Request:
        """Set ``Authorization``, ``X-Authorization`` and, if absent, ``Content-Type``.

        Raises:
            RequestMalformedError: the URL is ambiguous (A6).
            PopBuildError: a header listed in ``signed_headers`` is missing.
        """
        headers = request.headers
        content_type = headers.get("content-type")
        if content_type is None:
            content_type = headers["Content-Type"] = DEFAULT_CONTENT_TYPE
        authorization = headers["Authorization"] = f"Bearer {token.access_token}"
        headers["X-Authorization"] = api_pop(
            method=request.method,
            target=request.url.raw_path.decode("ascii"),
            content_type=content_type,
            authorization=authorization,
            body=request.content,
            key=self.tokens.credentials.key,
            extra=[(name, headers.get(name)) for name in self.signed_headers],
            now=self.tokens.clock(),
            ttl=self.tokens.pop_ttl,
        )
        return request

    # -- the plain generator ------------------------------------------------------------

    def _token_flow(self) -> Generator[httpx.Request, httpx.Response, Token]:
        request, sent_at = self.tokens.token_request()
        response = yield request
        response.read()
        return self.tokens.accept(response, sent_at)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Token request if needed, then the signed request; one re-token on ``invalid_token``.

        Raises:
            TaapError: the token server refused (typed A6 error).
        """
        token = self.tokens.cache.current()
        if token is None:
            token = yield from self._token_flow()
        response = yield self.sign(request, token)
        if is_invalid_token(response.status_code, lambda: _json(response, read=True)):
            token = yield from self._token_flow()
            yield self.sign(request, token)

    # -- what httpx runs -----------------------------------------------------------------

    def _next(self, response: httpx.Response, attempt: Attempt) -> str | float:
        return next_step(
            response.status_code,
            response.headers.get("retry-after"),
            lambda: _json(response, read=False),
            attempt,
            self.retry,
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """What ``httpx.Client`` runs: cached single-flight token, retries with ``sleep``."""
        request.read()
        token = self.tokens.token()
        attempt = Attempt()
        while True:
            response = yield self.sign(request, token)
            if response.status_code == 401:
                response.read()
            step = self._next(response, attempt)
            if step == "done":
                return
            if isinstance(step, float):
                self._sleep(step)
            else:
                token = self.tokens.refresh(token)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """What ``httpx.AsyncClient`` runs: cached single-flight token, retries with ``sleep``."""
        await request.aread()
        token = await self.tokens.atoken()
        attempt = Attempt()
        while True:
            response = yield self.sign(request, token)
            if response.status_code == 401:
                await response.aread()
            step = self._next(response, attempt)
            if step == "done":
                return
            if isinstance(step, float):
                await self._async_sleep(step)
            else:
                token = await self.tokens.arefresh(token)

    def __repr__(self) -> str:
        return f"PopAuth(tokens={self.tokens!r}, signed_headers={self.signed_headers!r})"


def _json(response: httpx.Response, *, read: bool) -> object:
    if read:
        response.read()
    return response.json()
