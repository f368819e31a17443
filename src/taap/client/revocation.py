"""Revocation (RFC 7009) and introspection (RFC 7662) from the caller's side, sans I/O except
for :func:`introspect` / :func:`aintrospect` (docs/client.md, "Revoking and introspecting").

Both endpoints sit on the token server beside the token endpoints. A revocation is asked the
way a token is: ``Authorization: Basic`` with the client's credentials and a PoP in
``X-Authorization`` over the exact request, ``body`` included; the body is the RFC 7009 form
``token=…``. An introspection is asked by a registered resource server with its own id and
secret (HTTP Basic, no PoP) and answers the RFC 7662 JSON object.

Where they are, unless given: :func:`server_endpoint` keeps the token URL's scheme, host and
whatever path comes before its ``/oauth2/`` (a gateway's prefix), and appends the endpoint's
path; a URL without ``/oauth2/`` in its path is taken as the server's origin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from taap.client.credentials import ClientCredentials, Secret, basic_authorization
from taap.client.flows import Wait, adrive, drive, send_flow, to_httpx
from taap.client.retry import RetryPolicy
from taap.client.token_request_builder import PreparedRequest, signed_post
from taap.client.wire import error_from_response, json_object
from taap.core.pop import DEFAULT_TTL
from taap.errors import TransportError

__all__ = [
    "FORM",
    "INTROSPECTION_PATH",
    "REVOCATION_PATH",
    "aintrospect",
    "build_introspection_request",
    "build_revocation_request",
    "check_url",
    "introspect",
    "introspection_from_response",
    "server_endpoint",
]

REVOCATION_PATH = "/oauth2/v1/revoke"
INTROSPECTION_PATH = "/oauth2/v1/introspect"
#: RFC 7009 section 2.1 and RFC 7662 section 2.1: both bodies are forms.
FORM = "application/x-www-form-urlencoded"


def check_url(url: str, what: str) -> str:
    """``url`` when it is an absolute http(s) URL.

    Raises:
        ValueError: anything else, named ``what``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    return url


def server_endpoint(url: str, path: str) -> str:
    """The URL of ``path`` on the token server that ``url`` (its token URL, base URL or any
    of its ``/oauth2/`` URLs) names; query and fragment are dropped.

    ``https://gw.example/taap/oauth2/v2/tokens`` → ``https://gw.example/taap`` + ``path``;
    ``http://127.0.0.1:8000`` → ``http://127.0.0.1:8000`` + ``path``.

    Raises:
        ValueError: ``url`` is not an absolute http(s) URL.
    """
    parts = urlsplit(check_url(url, "token server URL"))
    prefix, found, _ = parts.path.partition("/oauth2/")
    return urlunsplit((parts.scheme, parts.netloc, (prefix if found else "") + path, "", ""))


def _form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode("ascii")


def _check_token(token: str) -> None:
    if not isinstance(token, str) or not token:
        raise ValueError("the token must be a non-empty string")


def build_revocation_request(
    url: str,
    credentials: ClientCredentials,
    token: str,
    *,
    token_type_hint: str | None = None,
    now: float | None = None,
    ttl: int = DEFAULT_TTL,
) -> PreparedRequest:
    """The RFC 7009 request for ``token``, with Basic and a fresh PoP over it
    (docs/protocol.md#the-pop-token default coverage: ``Content-Type``, ``Authorization``, ``uri``,
    ``http-method``, ``body``).

    Raises:
        ValueError: an empty token.
        RequestMalformedError: the URL is ambiguous (docs/protocol.md#errors).
    """
    _check_token(token)
    pairs = [("token", token)]
    if token_type_hint is not None:
        pairs.append(("token_type_hint", token_type_hint))
    headers = [("Content-Type", FORM), ("Authorization", credentials.authorization)]
    return signed_post(url, headers, _form(pairs), credentials, now=now, ttl=ttl)


def build_introspection_request(
    url: str, token: str, *, resource_server_id: str, secret: Secret
) -> PreparedRequest:
    """The RFC 7662 request for ``token``, authenticated with a resource server's credentials.

    Raises:
        ValueError: an empty token, or an id that is empty or holds ``:`` (RFC 7617).
    """
    _check_token(token)
    if not resource_server_id or ":" in resource_server_id:
        raise ValueError("resource server id must be non-empty and contain no ':'")
    headers = (
        ("Content-Type", FORM),
        ("Authorization", basic_authorization(resource_server_id, secret)),
    )
    return PreparedRequest(method="POST", url=url, headers=headers, body=_form([("token", token)]))


def introspection_from_response(
    status: int, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """The RFC 7662 object of a 200 answer: ``{"active": false}`` or the live token's fields.

    Raises:
        TaapError: the server's error for any other status (``client_auth_failed`` …).
        TransportError: a 200 that is not a JSON object with a boolean ``active``.
    """
    if status != 200:
        raise error_from_response(status, headers, body)
    data = json_object(body)
    if data is None or not isinstance(data.get("active"), bool):
        raise TransportError("introspection endpoint answered 200 without a boolean 'active'")
    return data


def _introspection_flow(
    url: str, token: str, resource_server_id: str, secret: Secret, retry: RetryPolicy | None
) -> Generator[httpx.Request | Wait, Any, dict[str, Any]]:
    request = build_introspection_request(
        url, token, resource_server_id=resource_server_id, secret=secret
    )
    answer = yield from send_flow(
        lambda: to_httpx(request),
        retry if retry is not None else RetryPolicy(),
        f"the introspection endpoint {url}",
    )
    return introspection_from_response(answer.status_code, answer.headers, answer.content)


def _secret(value: Secret | str) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def introspect(
    url: str,
    token: str,
    *,
    resource_server_id: str,
    secret: Secret | str,
    retry: RetryPolicy | None = None,
    http: httpx.Client | None = None,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Ask the introspection endpoint ``url`` about ``token`` (429/503 and connection
    failures retried as for a token); ``http`` is used as given and left open.

    Raises:
        ValueError: as :func:`build_introspection_request`.
        TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
    """
    flow = _introspection_flow(url, token, resource_server_id, _secret(secret), retry)
    client = http if http is not None else httpx.Client(timeout=timeout)
    try:
        return drive(flow, _sender(client), sleep)
    finally:
        if http is None:
            client.close()


async def aintrospect(
    url: str,
    token: str,
    *,
    resource_server_id: str,
    secret: Secret | str,
    retry: RetryPolicy | None = None,
    http: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """Async :func:`introspect`, with the same retries and errors."""
    flow = _introspection_flow(url, token, resource_server_id, _secret(secret), retry)
    client = http if http is not None else httpx.AsyncClient(timeout=timeout)

    async def send(request: httpx.Request) -> httpx.Response | httpx.HTTPError:
        try:
            return await client.send(request)
        except httpx.HTTPError as exc:
            return exc

    try:
        return await adrive(flow, send, sleep or asyncio.sleep)
    finally:
        if http is None:
            await client.aclose()


def _sender(client: httpx.Client) -> Callable[[httpx.Request], httpx.Response | httpx.HTTPError]:
    def send(request: httpx.Request) -> httpx.Response | httpx.HTTPError:
        try:
            return client.send(request)
        except httpx.HTTPError as exc:
            return exc

    return send
