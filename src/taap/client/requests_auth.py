"""``PopRequestsAuth``: TAAP steps 1-4 for ``requests`` (optional extra ``taap[requests]``).

Same behaviour as :class:`~taap.client.httpx_auth.PopAuth`: the token comes from the shared
:class:`~taap.client.token_client.TokenClient` (cache, single flight, retries), every request gets a
fresh PoP over its exact body, a 401 ``invalid_token`` re-tokens once and retries once, and
429/503 are retried after ``Retry-After``. Retries are sent from a response hook through the
same connection adapter, as ``requests``' own digest auth does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from requests.auth import AuthBase

from taap.client.outcome import Attempt, next_step
from taap.client.retry import RetryPolicy
from taap.client.signing import DEFAULT_CONTENT_TYPE, api_pop
from taap.client.token_client import TokenClient
from taap.client.token_response import Token
from taap.errors import PopBuildError

__all__ = ["PopRequestsAuth"]

_TOKEN_ATTR = "_taap_token"


def _body(request: requests.PreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        # Send exactly the bytes we sign: requests would otherwise encode str as Latin-1.
        data = body.encode("utf-8")
        request.body = data
        request.prepare_content_length(data)
        return data
    raise PopBuildError("a streamed or file body cannot be signed; pass bytes or str")


class PopRequestsAuth(AuthBase):
    """``requests`` authentication performing TAAP steps 3-4 (and 1-2 when a token is needed)."""

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

    def sign(self, request: requests.PreparedRequest, token: Token) -> requests.PreparedRequest:
        """Set ``Authorization``, ``X-Authorization`` (and ``Content-Type`` if absent).

        Raises:
            RequestMalformedError: the URL is ambiguous (A6).
            PopBuildError: a streamed body, or a header in ``signed_headers`` is missing.
        """
        body = _body(request)
        headers = request.headers
        content_type = headers.get("Content-Type")
        if content_type is None:
            content_type = headers["Content-Type"] = DEFAULT_CONTENT_TYPE
        authorization = headers["Authorization"] = f"Bearer {token.access_token}"
        headers["X-Authorization"] = api_pop(
            method=request.method or "GET",
            target=request.path_url,
            content_type=content_type,
            authorization=authorization,
            body=body,
            key=self.tokens.credentials.key,
            extra=[(name, headers.get(name)) for name in self.signed_headers],
            now=self.tokens.clock(),
            ttl=self.tokens.pop_ttl,
        )
        setattr(request, _TOKEN_ATTR, token)
        return request

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self.sign(request, self.tokens.token())
        request.hooks["response"].append(self._on_response)
        return request

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        attempt = Attempt()
        while True:
            step = next_step(
                response.status_code,
                response.headers.get("Retry-After"),
                response.json,
                attempt,
                self.retry,
            )
            if step == "done":
                return response
            sent = response.request
            token: Token = getattr(sent, _TOKEN_ATTR)
            if isinstance(step, float):
                self._sleep(step)
            else:
                token = self.tokens.refresh(token)
            retry = self.sign(sent.copy(), token)
            # Drain and release the answer we are replacing, as requests' digest auth does.
            _ = response.content
            response.close()
            connection = response.connection
            new = connection.send(retry, **kwargs)
            new.history = [*response.history, response]
            new.request = retry
            response = new

    def __repr__(self) -> str:
        return f"PopRequestsAuth(tokens={self.tokens!r}, signed_headers={self.signed_headers!r})"
