"""``PopRequestsAuth``: TAAP steps 1-4 for ``requests`` (optional extra ``taap[requests]``).

The same flow as :class:`~taap.client.httpx_auth.PopAuth` (:func:`~taap.client.flows.call_flow`):
the token comes from the shared :class:`~taap.client.token_client.TokenClient` (cache, single
flight, retries), every request gets a fresh PoP over its exact body, a 401 ``invalid_token``
or ``token_revoked`` (or a 403 ``not_subscribed`` with a token old enough to predate a new
subscription) re-tokens once and retries once, and 429/503 are retried after ``Retry-After``.
Retries are sent from a response hook through the same connection adapter, as ``requests``'
own digest auth does.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import Any

import requests
from requests.auth import AuthBase

from taap.client.flows import Finished, advance
from taap.client.pop_auth_base import PopAuthBase
from taap.client.token_response import Token
from taap.errors import PopBuildError

__all__ = ["PopRequestsAuth"]

_FLOW_ATTR = "_taap_flow"


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


class PopRequestsAuth(PopAuthBase, AuthBase):
    """``requests`` authentication performing TAAP steps 3-4 (and 1-2 when a token is needed)."""

    def sign(self, request: requests.PreparedRequest, token: Token) -> requests.PreparedRequest:
        """Set ``Authorization``, ``X-Authorization`` (and ``Content-Type`` if absent).

        Raises:
            RequestMalformedError: the URL is ambiguous (docs/protocol.md#errors).
            PopBuildError: a streamed body, or a header in ``signed_headers`` is missing.
        """
        body = _body(request)
        self._set_pop_headers(
            request.headers, request.method or "GET", request.path_url, body, token
        )
        return request

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._refuse_ambiguous(request.path_url)
        # The request itself is sent first and a copy per retry, so each answer in ``history``
        # keeps the request it answered.
        targets = itertools.chain([request], iter(request.copy, None))
        flow = self._call_flow(
            lambda token: self.sign(next(targets), token), requests.Response.json
        )
        steps = self._run_sync(flow)
        signed = next(steps)
        setattr(signed, _FLOW_ATTR, steps)
        signed.hooks["response"].append(self._on_response)
        return signed

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        steps: Generator[requests.PreparedRequest, requests.Response, None] | None
        steps = getattr(response.request, _FLOW_ATTR, None)
        while steps is not None and not isinstance(retry := advance(steps, response), Finished):
            # Drain and release the answer we are replacing, as requests' digest auth does.
            _ = response.content
            response.close()
            new = response.connection.send(retry, **kwargs)
            new.history = [*response.history, response]
            new.request = retry
            response = new
        return response
