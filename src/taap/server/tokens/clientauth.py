"""Client authentication (docs/server.md, SECURITY.md A1): Basic credentials, the
client's record and secret, the failed-authentication rate limit, the v6 body, and the caller's
address for the limits.

Failed authentication (``client_auth_failed``, also for v6 body credentials that differ from
Basic) takes one token from the client's and the address's buckets. While a bucket is empty
every request it covers is answered 429, whether its credentials are right or wrong, so a
limited guesser learns nothing.

Basic: scheme case-insensitive, strict base64, split at the first ``:``, UTF-8. The halves
are taken as sent, without form-url-decoding: TAAP's documents and T-Mobile's builders encode
the raw ``client_id:client_secret``, and generated ids and secrets use only unreserved
characters, so both readings agree for them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from taap.core.strict_json import JsonError, loads_strict
from taap.errors import (
    BodyInvalidError,
    ClientAuthError,
    GrantTypeUnsupportedError,
    RateLimitedError,
    ScopeInvalidError,
)
from taap.server.registry.port import ClientRecord
from taap.server.registry.secrets import verify_secret
from taap.server.tokens.registry_cache import RegistryCache
from taap.settings import Networks
from taap.stores.ratelimit import Bucket, Rate, RateLimiter

__all__ = [
    "MAX_CLIENT_ID",
    "Authenticated",
    "ClientAuthenticator",
    "V6Body",
    "check_v2_body",
    "parse_basic",
    "parse_v6_body",
    "source_address",
]

MAX_CLIENT_ID = 256
MAX_CLAIM_VALUE = 64


def parse_basic(value: str | None) -> tuple[str, str]:
    """``(client_id, client_secret)`` from an ``Authorization: Basic`` value.

    Raises:
        ClientAuthError: missing, another scheme, bad base64, no ``:``, empty halves, not UTF-8.
    """
    if not value:
        raise ClientAuthError(log_detail="Authorization header missing")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        raise ClientAuthError(log_detail="Authorization scheme is not Basic")
    try:
        text = base64.b64decode(encoded.strip(" "), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ClientAuthError(log_detail="Basic credentials are not base64 of UTF-8") from exc
    client_id, sep, secret = text.partition(":")
    if not sep or not client_id or not secret:
        raise ClientAuthError(log_detail="Basic credentials are not client_id:client_secret")
    if len(client_id) > MAX_CLIENT_ID:
        raise ClientAuthError(log_detail="client_id too long")
    return client_id, secret


def check_v2_body(body: bytes) -> None:
    """v2: the body is empty or a strict JSON object (ignored, but bound by the PoP).

    Raises:
        BodyInvalidError: anything else.
    """
    if not body:
        return
    try:
        loads_strict(body, max_depth=32)
    except JsonError as exc:
        raise BodyInvalidError("body must be empty or a JSON object", log_detail=str(exc)) from exc


@dataclass(frozen=True, slots=True)
class V6Body:
    """The accepted fields of a v6 token request body."""

    client_id: str
    client_secret: str = field(repr=False)
    claims: dict[str, str]


def _required(obj: dict[str, Any], name: str) -> str:
    # RFC 6749 §3.2: an empty value counts as absent.
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise BodyInvalidError(f"'{name}' is required and must be a non-empty string")
    return value


def _optional(obj: dict[str, Any], name: str) -> str | None:
    if name not in obj:
        return None
    value = obj[name]
    if not isinstance(value, str):
        raise BodyInvalidError(f"'{name}' must be a string")
    return value or None


def parse_v6_body(body: bytes, *, client_id: str, client_secret: str) -> V6Body:
    """Check a v6 body against docs/protocol.md#the-token-endpoints and the authenticated Basic
    credentials.

    Order: syntax and types (400 body_invalid) → credentials equal to Basic (401) → grant type
    (400 grant_type_unsupported) → scope (400 scope_invalid).

    Raises:
        BodyInvalidError, ClientAuthError, GrantTypeUnsupportedError, ScopeInvalidError.
    """
    try:
        obj = loads_strict(body, max_depth=32)
    except JsonError as exc:
        raise BodyInvalidError("body must be a JSON object", log_detail=str(exc)) from exc
    body_id = _required(obj, "client_id")
    body_secret = _required(obj, "client_secret")
    scope = _required(obj, "scope")
    hyphen = _optional(obj, "grant-type")
    underscore = _optional(obj, "grant_type")
    if hyphen is None and underscore is None:
        raise BodyInvalidError("'grant-type' is required")
    if hyphen is not None and underscore is not None and hyphen != underscore:
        raise BodyInvalidError("'grant-type' and 'grant_type' differ")
    claims: dict[str, str] = {}
    for name in ("storeId", "dealerCode"):
        value = _optional(obj, name)
        if value is not None:
            if len(value) > MAX_CLAIM_VALUE:
                raise BodyInvalidError(f"'{name}' is longer than {MAX_CLAIM_VALUE} characters")
            claims[name] = value
    same_id = hmac.compare_digest(body_id.encode("utf-8"), client_id.encode("utf-8"))
    same_secret = hmac.compare_digest(body_secret.encode("utf-8"), client_secret.encode("utf-8"))
    if not (same_id and same_secret):
        raise ClientAuthError(log_detail="v6 body credentials differ from Basic")
    if (hyphen or underscore) != "client_credentials":
        raise GrantTypeUnsupportedError()
    if scope != "response_mode":
        raise ScopeInvalidError()
    return V6Body(client_id=body_id, client_secret=body_secret, claims=claims)


def _trusted(address: str, networks: Networks) -> bool:
    if networks == "*":
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def source_address(peer: str, forwarded: Iterable[bytes], networks: Networks) -> str:
    """The caller's address: the peer, or from ``X-Forwarded-For`` when the peer is trusted.

    The chain is walked from the right and the first hop that is not a trusted proxy wins, so a
    client cannot choose its own address by prepending entries.
    """
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [
        hop.strip()
        for value in forwarded
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


class _Claimant(Protocol):
    """Where the audit line of a request keeps the client id it claimed, and whether the
    registry knows that client (only then does the client's usage count the request)."""

    client_id: str | None
    registered: bool


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A client whose Basic credentials held, with the buckets its later failures drain."""

    client_id: str
    record: ClientRecord
    secret: str = field(repr=False)
    buckets: list[Bucket]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAuthenticator:
    """Steps 5-6 of docs/protocol.md#order-of-checks: Basic credentials → the active client's
    record → the failed-auth limit."""

    cache: RegistryCache
    limiter: RateLimiter
    pepper: bytes = field(repr=False)
    client_rate: Rate
    address_rate: Rate

    def buckets(self, client_id: str | None, source: str, *, kind: str = "client") -> list[Bucket]:
        """The address's bucket, and the caller's when an id was given (``kind`` ``client``,
        or ``rs`` for a resource server at introspection: its own bucket, the same rate)."""
        buckets = [Bucket(f"addr:{source}", self.address_rate)]
        if client_id is not None:
            buckets.append(Bucket(f"{kind}:{client_id}", self.client_rate))
        return buckets

    async def penalise(self, buckets: list[Bucket], *, now: float) -> float:
        """Take one token from each bucket for a failure; the wait if one was empty."""
        return await self.limiter.take(buckets, now=now)

    async def refuse(self, buckets: list[Bucket], *, now: float) -> None:
        """A failed authentication: penalise ``buckets``; 429 instead when one was empty.

        Raises:
            RateLimitedError: a bucket was already empty.
        """
        wait = await self.penalise(buckets, now=now)
        if wait > 0:
            raise RateLimitedError(retry_after=math.ceil(wait))

    async def admit(self, buckets: list[Bucket], *, now: float) -> None:
        """A successful authentication still answers 429 while a bucket is empty.

        Raises:
            RateLimitedError: a bucket is empty.
        """
        wait = await self.limiter.check(buckets, now=now)
        if wait > 0:
            raise RateLimitedError(retry_after=math.ceil(wait))

    async def authenticate(
        self, authorization: str | None, *, source: str, now: float, claimant: _Claimant
    ) -> Authenticated:
        """Check the Basic credentials, then that the client is not rate-limited.

        ``claimant.client_id`` is set as soon as the header names one (for the audit line).

        Raises:
            ClientAuthError: missing or wrong credentials, unknown or disabled client.
            RateLimitedError: the client's or the address's bucket is empty.
            UnavailableError: the registry is unreachable.
        """
        client_id: str | None = None
        try:
            client_id, secret = parse_basic(authorization)
            claimant.client_id = client_id
            record = await self.cache.client(client_id)
            claimant.registered = record is not None
            digests = record.secret_digests if record is not None else ()
            if not verify_secret(self.pepper, secret, digests) or record is None:
                raise ClientAuthError(log_detail="unknown client or wrong secret")
            if record.status != "active":
                raise ClientAuthError(log_detail="client is disabled")
        except ClientAuthError:
            await self.refuse(self.buckets(client_id, source), now=now)
            raise
        buckets = self.buckets(client_id, source)
        await self.admit(buckets, now=now)
        return Authenticated(client_id=client_id, record=record, secret=secret, buckets=buckets)

    async def body_claims(
        self, body: bytes, version: str, client: Authenticated, *, now: float
    ) -> dict[str, str]:
        """Step 7 of docs/protocol.md#order-of-checks: the v6 body's extra claims (v2: none),
        checked against Basic.

        Raises:
            BodyInvalidError, ClientAuthError, GrantTypeUnsupportedError, ScopeInvalidError.
        """
        if version != "v6":
            check_v2_body(body)
            return {}
        try:
            return parse_v6_body(
                body, client_id=client.client_id, client_secret=client.secret
            ).claims
        except ClientAuthError:
            await self.penalise(client.buckets, now=now)
            raise
