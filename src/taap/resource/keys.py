"""Where the guard gets the token server's signing keys (docs/guard.md, docs/server.md; SECURITY.md
I4, §4).

:class:`StaticKeys` holds keys given at start-up. :class:`JwksKeys` discovers ``jwks_uri`` from
``<base>/.well-known/openid-configuration``, fetches the JWKS and caches it:

* the cache lives ``ttl`` seconds (``TAAP_JWKS_TTL``, 300); after that the next request
  refetches it;
* an unknown ``kid`` triggers a refetch at most once per ``min_refresh`` seconds
  (``TAAP_JWKS_MIN_REFRESH``, 30), so random ``kid`` values cannot make the guard hammer the
  token server;
* when a refetch fails the keys already held keep serving for ``max_stale`` more seconds, then
  the guard answers 503 ``unavailable`` (fail closed, keys age out);
* only ``https`` URLs, or ``http`` on a loopback host, are fetched; redirects are not followed.

The fetch is the only I/O here; the monotonic clock is injected so tests drive the cache rules.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from taap.core.keys import PublicKey, public_key_from_jwk
from taap.core.strict_json import JsonError, loads_strict
from taap.errors import ConfigurationError, KeyFormatError, UnavailableError
from taap.resource.metrics import jwks_refreshed

__all__ = [
    "DISCOVERY_PATH",
    "JwksKeys",
    "KeyProvider",
    "KeySet",
    "StaticKeys",
    "check_fetch_url",
    "parse_jwks",
]

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 256 * 1024
# With no keys at all every request fails; retrying once a second bounds the load on the token
# server while it starts, without leaving the guard closed for a whole min_refresh interval.
EMPTY_RETRY = 1.0

log = logging.getLogger("taap.resource")


@dataclass(frozen=True, slots=True)
class KeySet:
    """Verification keys by ``kid`` and the issuer they sign for (None: the caller pins it)."""

    keys: Mapping[str, PublicKey]
    issuer: str | None = None


class KeyProvider(Protocol):
    """The guard's narrow port to the token server's keys."""

    async def current(self) -> KeySet:
        """The keys to verify with now.

        Raises:
            UnavailableError: no usable keys (fetch failed and nothing fresh enough is cached).
        """
        ...

    async def refresh(self) -> KeySet:
        """The keys after a refetch for an unknown ``kid``, if one is allowed now.

        Raises:
            UnavailableError: the refetch it made failed.
        """
        ...


class StaticKeys:
    """Keys given at start-up (no network)."""

    def __init__(self, keys: Mapping[str, PublicKey], *, issuer: str | None = None) -> None:
        if not keys:
            raise ConfigurationError("static keys: at least one key is required")
        self._set = KeySet(dict(keys), issuer)

    async def current(self) -> KeySet:
        """See :meth:`KeyProvider.current`."""
        return self._set

    async def refresh(self) -> KeySet:
        """See :meth:`KeyProvider.refresh` (static keys never change)."""
        return self._set


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str) -> str:
    """Return ``url`` if the guard may fetch keys from it: ``https``, or ``http`` on loopback.

    Raises:
        ConfigurationError: any other scheme or host, or a URL with credentials.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password or not host:
        raise ConfigurationError(f"not a usable key URL: {url!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return url
    raise ConfigurationError(f"key URLs must be https (or http on loopback): {url!r}")


def parse_jwks(document: Mapping[str, Any]) -> dict[str, PublicKey]:
    """The RS256 signing keys of a JWKS document, by ``kid``; unusable entries are skipped.

    Raises:
        ValueError: no ``keys`` array, or no usable key in it.
    """
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no keys array")
    keys: dict[str, PublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128 or kid in keys:
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        if "d" in jwk:
            # Private material in a JWKS is the token server's bug; never use such an entry.
            log.warning("JWKS entry %r carries private key material; ignored", kid)
            continue
        try:
            keys[kid] = public_key_from_jwk(jwk)
        except KeyFormatError:
            continue
    if not keys:
        raise ValueError("JWKS holds no usable RS256 key")
    return keys


class _FetchError(Exception):
    pass


@dataclass(slots=True)
class _Cache:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    issuer: str | None = None
    jwks_uri: str | None = None
    fetched_at: float | None = None  # last success
    attempted_at: float | None = None  # last attempt, success or not


class JwksKeys:
    """Keys from the token server's JWKS, found through its discovery document."""

    def __init__(
        self,
        base_url: str,
        *,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
        max_stale: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = check_fetch_url(base_url.rstrip("/"))
        if ttl <= 0 or min_refresh < 0 or max_stale < 0:
            raise ConfigurationError("JWKS ttl must be positive, min_refresh/max_stale >= 0")
        self.ttl, self.min_refresh, self.max_stale = ttl, min_refresh, max_stale
        self._clock = clock
        self._transport = transport
        self._timeout = timeout
        self._cache = _Cache()
        self._lock: asyncio.Lock | None = None
        #: number of fetch attempts (discovery + JWKS counts as one); for tests and metrics
        self.fetches = 0

    def _snapshot(self) -> KeySet:
        return KeySet(self._cache.keys, self._cache.issuer)

    async def current(self) -> KeySet:
        """See :meth:`KeyProvider.current`."""
        now = self._clock()
        cache = self._cache
        if cache.fetched_at is None or now - cache.fetched_at >= self.ttl:
            retry_after = self.min_refresh if cache.keys else EMPTY_RETRY
            if cache.attempted_at is None or now - cache.attempted_at >= retry_after:
                await self._fetch(seen_attempt=cache.attempted_at)
        if cache.fetched_at is None:
            # The first fetch may be under way for another request: wait for its result rather
            # than answer 503 to every request that arrives while it runs (a node's start).
            await self._join_fetch()
        now = self._clock()
        if cache.fetched_at is None:
            raise UnavailableError(log_detail="no JWKS from the token server yet")
        if now - cache.fetched_at > self.ttl + self.max_stale:
            raise UnavailableError(log_detail="JWKS too stale and the token server unreachable")
        return self._snapshot()

    async def refresh(self) -> KeySet:
        """See :meth:`KeyProvider.refresh`."""
        cache = self._cache
        now = self._clock()
        if cache.attempted_at is not None and now - cache.attempted_at < self.min_refresh:
            # A refetch started by another request for the same new kid may be under way:
            # its result is the one to use (after a rotation many requests carry the new kid).
            await self._join_fetch()
            return self._snapshot()
        if not await self._fetch(seen_attempt=cache.attempted_at):
            raise UnavailableError(log_detail="JWKS refresh failed")
        return self._snapshot()

    async def _join_fetch(self) -> None:
        # Wait until a fetch another request started (if any) has finished.
        if self._lock is not None and self._lock.locked():
            async with self._lock:
                pass

    async def _fetch(self, *, seen_attempt: float | None) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            cache = self._cache
            if cache.attempted_at != seen_attempt:
                # Another request fetched while this one waited: use its result.
                return cache.fetched_at is not None and cache.fetched_at == cache.attempted_at
            started = self._clock()
            cache.attempted_at = started
            self.fetches += 1
            try:
                issuer, keys = await self._download()
            except _FetchError as exc:
                log.warning("JWKS fetch from %s failed: %s", self.base_url, exc)
                cache.jwks_uri = None  # rediscover next time: the server may have moved it
                jwks_refreshed(False)
                return False
            cache.keys, cache.issuer, cache.fetched_at = keys, issuer, started
            jwks_refreshed(True)
            return True

    async def _download(self) -> tuple[str | None, dict[str, PublicKey]]:
        cache = self._cache
        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, timeout=self._timeout
        ) as client:
            issuer = cache.issuer
            if cache.jwks_uri is None:
                meta = await self._get_json(client, self.base_url + DISCOVERY_PATH)
                uri, issuer = meta.get("jwks_uri"), meta.get("issuer")
                if not isinstance(uri, str) or not isinstance(issuer, str) or not issuer:
                    raise _FetchError("discovery lacks jwks_uri or issuer")
                try:
                    cache.jwks_uri = check_fetch_url(uri)
                except ConfigurationError as exc:
                    raise _FetchError(exc.description) from exc
            jwks = await self._get_json(client, cache.jwks_uri)
        try:
            return issuer, parse_jwks(jwks)
        except ValueError as exc:
            raise _FetchError(str(exc)) from exc

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        try:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise _FetchError(f"GET {url} answered {resp.status_code}")
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_DOCUMENT_BYTES:
                        raise _FetchError(f"GET {url}: document over {MAX_DOCUMENT_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise _FetchError(f"GET {url}: {type(exc).__name__}") from exc
        try:
            value = loads_strict(bytes(data))
        except JsonError as exc:
            raise _FetchError(f"GET {url}: not a JSON object") from exc
        assert isinstance(value, dict)
        return value
