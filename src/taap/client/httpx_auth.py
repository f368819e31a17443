"""``PopAuth``: steps 3-4 on every request of an ``httpx.Client`` or ``httpx.AsyncClient``.

Each request runs :func:`~taap.client.flows.call_flow`: sign, send, on a 401 ``invalid_token``
or ``token_revoked`` (or a 403 ``not_subscribed`` with a token old enough to predate a new
subscription) a new token and one retry, on 429/503 a wait (``Retry-After``) and a retry with
a fresh PoP. ``revoke()`` / ``arevoke()`` revoke the cached token through the TokenClient.
httpx runs the ``sync_auth_flow`` / ``async_auth_flow`` drivers: they take the token from the
:class:`~taap.client.token_client.TokenClient` (its own HTTP client, retries and single-flight
lock: many threads or tasks, one token request) and sleep in ``sleep`` / ``async_sleep``.

``auth_flow`` is the same flow as the plain httpx generator, for driving by hand: without a
usable cached token it yields the token request too (no lock), and it waits in ``sleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any, Unpack

import httpx

from taap.client.credentials import ClientCredentials
from taap.client.flows import Finished, NeedToken, TokenSource, Wait, advance, ask_for_token
from taap.client.pop_auth_base import PopAuthBase, PopAuthOptions
from taap.client.token_client import TokenClient
from taap.client.token_request_builder import TokenEndpoint
from taap.client.token_response import Token

__all__ = ["PopAuth"]


class PopAuth(PopAuthBase, httpx.Auth):
    """httpx authentication performing TAAP steps 3-4 (and 1-2 when a token is needed)."""

    requires_request_body = True

    def __init__(
        self,
        tokens: TokenClient,
        *,
        async_sleep: Callable[[float], Awaitable[Any]] | None = None,
        **options: Unpack[PopAuthOptions],
    ) -> None:
        super().__init__(tokens, **options)
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
            RequestMalformedError: the URL is ambiguous (docs/protocol.md#errors).
            PopBuildError: a header listed in ``signed_headers`` is missing.
        """
        target = request.url.raw_path.decode("ascii")
        self._set_pop_headers(request.headers, request.method, target, request.content, token)
        return request

    def _flow(
        self, request: httpx.Request, get_token: TokenSource = ask_for_token
    ) -> Generator[httpx.Request | Wait | NeedToken, Any, None]:
        self._refuse_ambiguous(request.url.raw_path.decode("ascii"))
        return self._call_flow(partial(self.sign, request), _read_json, get_token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for driving by hand; it also yields the token request when one is needed.

        No lock is taken; re-token and 429/503 retries are those of httpx's drivers, and the
        waits happen in ``sleep``.

        Raises:
            TaapError: the token server refused (typed error).
        """
        yield from self._run_sync(self._flow(request, self.tokens.token_flow))

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """What ``httpx.Client`` runs: cached single-flight token, retries with ``sleep``."""
        request.read()
        yield from self._run_sync(self._flow(request))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """What ``httpx.AsyncClient`` runs: cached single-flight token, waits in ``async_sleep``."""
        await request.aread()
        flow = self._flow(request)
        reply: httpx.Response | Token | None = None
        while not isinstance(step := advance(flow, reply), Finished):
            if isinstance(step, Wait):
                await self._async_sleep(step.seconds)
                reply = None
            elif isinstance(step, NeedToken):
                reply = await self.tokens.arefresh(step.stale)
            else:
                reply = yield step
                if reply.status_code in (401, 403):
                    await reply.aread()  # the flow reads these bodies; here without blocking


def _read_json(response: httpx.Response) -> object:
    response.read()  # nothing to do once async_auth_flow has read it
    return response.json()
