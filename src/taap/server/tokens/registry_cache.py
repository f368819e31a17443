"""The token endpoints' reads of the registry, with their short, documented caches.

- clients: ``TAAP_REGISTRY_CACHE`` seconds (0, the default, reads every time: a disabled client
  or a rotated secret takes effect at once);
- products: kept, since a product never changes once created; an unknown id reloads the map;
- the active signing key: re-read every ``TAAP_KEY_REFRESH`` seconds.

Every read that finds the registry unreachable counts once in ``taap_database_errors_total``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from typing import Literal, TypeVar

from taap.errors import UnavailableError
from taap.server.metrics import ServerMetrics
from taap.server.registry.port import ApiProduct, ClientRecord, RegistryReader, SigningKeyRecord
from taap.server.settings import ServerSettings

__all__ = ["RegistryCache", "Version"]

Version = Literal["v2", "v6"]
T = TypeVar("T")
_MAX_CACHED_CLIENTS = 10_000


def published_long_enough(
    keys: Sequence[SigningKeyRecord], *, now: float, delay: float
) -> SigningKeyRecord:
    """The newest key published at least ``delay`` seconds ago (else the oldest published one).

    Publish before use: a guard refetches the JWKS for an unknown ``kid`` at most once per
    ``TAAP_JWKS_MIN_REFRESH`` seconds, so a key that signs sooner after ``taap keys rotate``
    can be refused by a guard that fetched just before the rotation (seen in the cluster test).
    """
    for key in keys:
        created = key.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        if now - created.timestamp() >= delay:
            return key
    return keys[-1]


class RegistryCache:
    """What one token request reads from the registry: the client, its products, the key."""

    def __init__(
        self,
        registry: RegistryReader,
        metrics: ServerMetrics,
        settings: ServerSettings,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self.registry = registry
        self._metrics = metrics
        self._client_ttl = settings.registry_cache
        self._key_refresh = settings.key_refresh
        # Publish before use: see published_long_enough.
        self._publish_delay = settings.jwks_min_refresh
        self._clock, self._monotonic = clock, monotonic
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}
        self._products: dict[str, ApiProduct] = {}
        self._signing: SigningKeyRecord | None = None
        self._signing_at = -math.inf

    async def _read(self, read: Awaitable[T]) -> T:
        try:
            return await read
        except UnavailableError:
            self._metrics.database_errors.inc()
            raise

    async def client(self, client_id: str) -> ClientRecord | None:
        """The client's record, or ``None`` for an unknown id.

        Raises:
            UnavailableError: the registry is unreachable.
        """
        if self._client_ttl <= 0:
            return await self._read(self.registry.get_client(client_id))
        mono = self._monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and mono - cached[0] < self._client_ttl:
            return cached[1]
        record = await self._read(self.registry.get_client(client_id))
        if len(self._clients) >= _MAX_CACHED_CLIENTS:
            self._clients.clear()
        self._clients[client_id] = (mono, record)
        return record

    async def served(self, apis: Sequence[str], version: Version) -> list[str]:
        """The ids among ``apis`` whose product is served by token-server ``version``.

        Raises:
            UnavailableError: the registry is unreachable.
        """
        if any(api not in self._products for api in apis):
            listed = await self._read(self.registry.list_products())
            self._products = {p.id: p for p in listed}
        products = self._products
        return [a for a in apis if a in products and products[a].token_server == version]

    async def signing_key(self) -> SigningKeyRecord:
        """The active signing key, re-read every ``TAAP_KEY_REFRESH`` seconds.

        Raises:
            UnavailableError: the registry is unreachable or holds no signing key.
        """
        mono = self._monotonic()
        if self._signing is None or mono - self._signing_at >= self._key_refresh:
            keys = await self._read(self.registry.signing_keys())
            if not keys:
                raise UnavailableError(log_detail="the registry holds no signing key")
            self._signing = published_long_enough(
                keys, now=self._clock(), delay=self._publish_delay
            )
            self._signing_at = mono
        return self._signing
