"""The TAAP client SDK: the four steps of docs/pop.md from Python.

Quick start::

    auth = PopAuth.from_key_file(TOKEN_URL, client_id=ID, client_secret=SECRET, key_path="key.pem")
    with httpx.Client(auth=auth) as http:
        print(http.get("https://api.example/iot-connectivity/v1/devices/8901260000000000001").json())

``PopRequestsAuth`` (the same for ``requests``) needs the ``requests`` extra and is imported
on first use, so the base install does not need ``requests``. ``auth.revoke()`` revokes the
cached token (RFC 7009); ``introspect()`` is a resource server's RFC 7662 question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taap.client.cached_token import TokenCache
from taap.client.credentials import ClientCredentials, Secret, basic_authorization
from taap.client.httpx_auth import PopAuth
from taap.client.retry import NO_RETRY, RetryNotice, RetryPolicy
from taap.client.revocation import (
    aintrospect,
    build_introspection_request,
    build_revocation_request,
    introspect,
)
from taap.client.signing import api_pop
from taap.client.token_client import TokenClient
from taap.client.token_request_builder import (
    PreparedRequest,
    TokenEndpoint,
    build_token_request,
    curl_command,
    endpoint_version,
)
from taap.client.token_response import Token, parse_expires_in, token_from_response
from taap.client.wire import error_from_response, parse_retry_after

if TYPE_CHECKING:
    from taap.client.requests_auth import PopRequestsAuth

__all__ = [
    "NO_RETRY",
    "ClientCredentials",
    "PopAuth",
    "PopRequestsAuth",
    "PreparedRequest",
    "RetryNotice",
    "RetryPolicy",
    "Secret",
    "Token",
    "TokenCache",
    "TokenClient",
    "TokenEndpoint",
    "aintrospect",
    "api_pop",
    "basic_authorization",
    "build_introspection_request",
    "build_revocation_request",
    "build_token_request",
    "curl_command",
    "endpoint_version",
    "error_from_response",
    "introspect",
    "parse_expires_in",
    "parse_retry_after",
    "token_from_response",
]


def __getattr__(name: str) -> Any:
    # ``requests`` is an optional extra: import its adapter only when someone asks for it.
    if name == "PopRequestsAuth":
        from taap.client.requests_auth import PopRequestsAuth

        return PopRequestsAuth
    raise AttributeError(f"module 'taap.client' has no attribute {name!r}")
