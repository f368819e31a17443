"""One API call with the four steps, and curl-like rendering of the answer (``taap call``)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from taap.client.httpx_auth import PopAuth
from taap.client.profiles import ClientSettings
from taap.client.retry import RetryPolicy
from taap.client.token_client import TokenClient
from taap.client.wire import transport_error

__all__ = ["call_api", "response_head"]


def call_api(
    settings: ClientSettings,
    method: str,
    url: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
) -> httpx.Response:
    """Get a token, sign and send one request; the answer is returned whatever its status.

    Raises:
        TaapError: the token server refused (typed error), or the key cannot be loaded.
        TransportError: the API could not be reached.
    """
    tokens = TokenClient(settings.endpoint(), settings.credentials(), retry=retry)
    policy = tokens.retry
    # Connection-level retries only: a request that never reached the server is safe to resend.
    transport = httpx.HTTPTransport(retries=policy.max_retries)
    try:
        with (
            tokens,
            httpx.Client(auth=PopAuth(tokens), transport=transport, timeout=timeout) as http,
        ):
            return http.request(method.upper(), url, headers=list(headers), content=body)
    except httpx.HTTPError as exc:
        raise transport_error(url, exc) from exc


def response_head(response: httpx.Response) -> str:
    """Status line and headers as ``curl -i`` shows them (CRLF line ends, blank line last)."""
    lines = [f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()]
    lines.extend(f"{name}: {value}" for name, value in response.headers.multi_items())
    return "\r\n".join(lines) + "\r\n\r\n"
