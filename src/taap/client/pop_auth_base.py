"""What ``PopAuth`` (httpx) and ``PopRequestsAuth`` (``requests``) share, whatever the library.

Both hold a :class:`~taap.client.token_client.TokenClient`, the extra headers to sign, a retry
policy and a ``sleep``; both set the step-3 headers the same way, run the same
:func:`~taap.client.flows.call_flow` and revoke through their TokenClient. Only how a request
is read, copied and sent differs, and that stays in the two adapters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, MutableMapping, Sequence
from typing import Any, TypedDict, TypeVar

from taap.client.flows import NeedToken, TokenSource, Wait, ask_for_token, call_flow, run_sync
from taap.client.retry import RetryPolicy
from taap.client.signing import DEFAULT_CONTENT_TYPE, api_pop
from taap.client.token_client import TokenClient
from taap.client.token_response import Token
from taap.core.request import canonical_uri, split_target

__all__ = ["PopAuthBase", "PopAuthOptions"]

S = TypeVar("S")


class PopAuthOptions(TypedDict, total=False):
    """The keyword options every adapter takes (see :class:`PopAuthBase`)."""

    signed_headers: Sequence[str]
    retry: RetryPolicy | None
    sleep: Callable[[float], None] | None


class PopAuthBase:
    """Steps 3-4 with a :class:`TokenClient`: the settings and behaviour both adapters share.

    ``signed_headers`` are signed besides the defaults of docs/protocol.md#the-pop-token (each must
    be present); ``retry`` bounds the 429/503 retries (default: the TokenClient's); ``sleep`` waits
    between them.
    """

    def __init__(
        self,
        tokens: TokenClient,
        *,
        signed_headers: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.tokens = tokens
        self.signed_headers = tuple(signed_headers)
        self.retry = retry if retry is not None else tokens.retry
        self._sleep = sleep or time.sleep

    @staticmethod
    def _refuse_ambiguous(target: str) -> None:
        """Raise RequestMalformedError for a target the servers would refuse (the uri rule of
        docs/protocol.md#the-pop-token).

        Checked before a token is fetched, so nothing is sent for such a request.
        """
        canonical_uri(*split_target(target))

    def _set_pop_headers(
        self, headers: MutableMapping[str, str], method: str, target: str, body: bytes, token: Token
    ) -> None:
        # Content-Type is sent and signed even on a GET (step 4 of docs/protocol.md#the-four-steps);
        # the caller's is kept.
        content_type = headers.get("Content-Type")
        if content_type is None:
            content_type = headers["Content-Type"] = DEFAULT_CONTENT_TYPE
        authorization = headers["Authorization"] = f"Bearer {token.access_token}"
        headers["X-Authorization"] = api_pop(
            method=method,
            target=target,
            content_type=content_type,
            authorization=authorization,
            body=body,
            key=self.tokens.credentials.key,
            extra=[(name, headers.get(name)) for name in self.signed_headers],
            now=self.tokens.clock(),
            ttl=self.tokens.pop_ttl,
        )

    def _call_flow(
        self,
        sign: Callable[[Token], S],
        read_json: Callable[[Any], object],
        get_token: TokenSource = ask_for_token,
    ) -> Generator[S | Wait | NeedToken, Any, None]:
        return call_flow(
            sign, read_json, self.retry, get_token, outdated=self.tokens.may_predate_subscription
        )

    def _run_sync(
        self, flow: Generator[S | Wait | NeedToken, Any, None]
    ) -> Generator[S, Any, None]:
        # A token is fetched by the TokenClient under its lock: many threads, one token request.
        return run_sync(flow, sleep=self._sleep, token_for=self.tokens.refresh)

    def revoke(self, token: str | None = None, *, token_type_hint: str | None = None) -> bool:
        """Revoke ``token``, by default the cached one: :meth:`TokenClient.revoke`."""
        return self.tokens.revoke(token, token_type_hint=token_type_hint)

    async def arevoke(
        self, token: str | None = None, *, token_type_hint: str | None = None
    ) -> bool:
        """Async :meth:`revoke`: :meth:`TokenClient.arevoke`."""
        return await self.tokens.arevoke(token, token_type_hint=token_type_hint)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tokens={self.tokens!r}, signed_headers={self.signed_headers!r})"
        )
