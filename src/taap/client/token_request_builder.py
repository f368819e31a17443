"""Step 1 and the request of step 2, sans I/O: the token request and its PoP (docs/pop.md,
docs/server.md).

The body is serialized once, signed, and the very same bytes are sent
(docs/protocol.md#the-pop-token: never re-serialize between signing and sending). ``curl_command``
renders the request in the seed document's BEFORE/AFTER form so shell and Postman users can paste
it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from taap.client.credentials import ClientCredentials
from taap.core.pop import DEFAULT_TTL, build_pop_token
from taap.core.request import canonical_uri, request_pairs

__all__ = [
    "PreparedRequest",
    "TokenEndpoint",
    "TokenVersion",
    "build_token_request",
    "curl_command",
    "endpoint_version",
    "signed_post",
]

TokenVersion = Literal["v2", "v6"]
_V6_PATH = re.compile(r"/v6/tokens/?$")
# storeId / dealerCode are strings of at most 64 characters (docs/protocol.md#the-token-endpoints).
_MAX_CONTEXT = 64


def endpoint_version(url: str) -> TokenVersion:
    """``v6`` when the URL path ends in ``/v6/tokens``, else ``v2`` (the seed's two servers)."""
    return "v6" if _V6_PATH.search(urlsplit(url).path) else "v2"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenEndpoint:
    """Where and how to ask for tokens. ``version`` ``None`` means: follow the URL path."""

    url: str
    version: TokenVersion | None = None
    store_id: str | None = None
    dealer_code: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("token URL must be an absolute http(s) URL")
        if self.version not in (None, "v2", "v6"):
            raise ValueError("version must be 'v2' or 'v6'")
        for name, value in (("storeId", self.store_id), ("dealerCode", self.dealer_code)):
            if value is None:
                continue
            if self.effective_version != "v6":
                raise ValueError(f"{name} is sent only to a v6 token server")
            if not value or len(value) > _MAX_CONTEXT:
                raise ValueError(f"{name} must be 1..{_MAX_CONTEXT} characters")

    @property
    def effective_version(self) -> TokenVersion:
        """The forced version, else the one the URL path names."""
        return self.version or endpoint_version(self.url)


@dataclass(frozen=True, slots=True, repr=False)
class PreparedRequest:
    """A request ready to send: exact header values and body bytes (the PoP signs these)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __repr__(self) -> str:
        # Headers hold the Basic credentials and the body may hold the v6 secret.
        return f"PreparedRequest(method={self.method!r}, url={self.url!r}, body={len(self.body)}B)"


def _v6_body(endpoint: TokenEndpoint, credentials: ClientCredentials) -> bytes:
    fields: dict[str, str] = {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret.reveal(),
        "scope": "response_mode",
        "grant-type": "client_credentials",
    }
    if endpoint.store_id is not None:
        fields["storeId"] = endpoint.store_id
    if endpoint.dealer_code is not None:
        fields["dealerCode"] = endpoint.dealer_code
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _target(url: str) -> str:
    parts = urlsplit(url)
    return canonical_uri(parts.path or "/", parts.query)


def signed_post(
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: ClientCredentials,
    *,
    now: float | None = None,
    ttl: int = DEFAULT_TTL,
) -> PreparedRequest:
    """A ``POST`` to ``url`` with ``headers`` and ``body``, and a PoP over all of them in the order
    of docs/protocol.md#the-pop-token default coverage (the headers in order, ``uri``,
    ``http-method``, ``body`` if non-empty).

    Raises:
        RequestMalformedError: the URL path or query is ambiguous (docs/protocol.md#errors) or not
        UTF-8. PopBuildError: ``ttl`` outside 1..120.
    """
    pairs = request_pairs("POST", _target(url), headers, body)
    pop = build_pop_token(pairs, credentials.key, ttl=ttl, now=now)
    return PreparedRequest(
        method="POST", url=url, headers=(*headers, ("X-Authorization", pop)), body=body
    )


def build_token_request(
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    *,
    now: float | None = None,
    ttl: int = DEFAULT_TTL,
) -> PreparedRequest:
    """The step-2 request with a fresh step-1 PoP over it (the default coverage of
    docs/protocol.md#the-pop-token).

    Signed, in order: ``Content-Type``, ``Authorization`` (Basic), ``uri``, ``http-method`` and,
    for v6, ``body``. A v2 request has an empty body, which docs/protocol.md#the-pop-token leaves
    unsigned.

    Raises:
        RequestMalformedError: the URL path or query is ambiguous (docs/protocol.md#errors) or not
        UTF-8. PopBuildError: ``ttl`` outside 1..120.
    """
    body = _v6_body(endpoint, credentials) if endpoint.effective_version == "v6" else b""
    headers = [
        ("Content-Type", "application/json"),
        ("Authorization", credentials.authorization),
    ]
    return signed_post(endpoint.url, headers, body, credentials, now=now, ttl=ttl)


def _shell_quote(text: str) -> str:
    # The seed quotes with '...'; a quote inside becomes '\'' (close, escaped quote, reopen).
    return "'" + text.replace("'", "'\\''") + "'"


def curl_command(request: PreparedRequest) -> str:
    """The request as the seed's curl command (``--location --request POST … --data-raw``)."""
    lines = [f"curl --location --request {request.method} {_shell_quote(request.url)} \\"]
    lines.extend(
        f"--header {_shell_quote(f'{name}: {value}')} \\" for name, value in request.headers
    )
    lines.append(f"--data-raw {_shell_quote(request.body.decode('utf-8'))}")
    return "\n".join(lines)
