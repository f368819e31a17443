"""An in-memory :class:`~taap.server.registry.port.Registry` for tests and throw-away servers.

Behaves like ``SqlRegistry`` (the contract tests run against both): same ids, same checks, same
errors, same signing-key publication rules. Nothing is persisted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from secrets import token_bytes

from taap.core.keys import PrivateKey, PublicKey, generate_private_key
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._decoy import DECOY_API, DECOY_CLIENT_ID
from taap.server.registry._rules import (
    DEFAULT_CLIENT_ID_PREFIX,
    DEFAULT_KEY_PUBLISH_SECONDS,
    NewClient,
    RegistryRules,
    is_client_id,
    publishable_keys,
    to_datetime,
)
from taap.server.registry.port import (
    DEFAULT_PRODUCTS,
    ApiProduct,
    ClientRecord,
    ClientStatus,
    SigningKeyRecord,
)

__all__ = ["MemoryRegistry"]


@dataclass(slots=True)
class _Secret:
    digest: bytes
    weak: bool
    expires_at: float | None  # None: current secret; a time: previous secret in its grace period


@dataclass(slots=True)
class _Client:
    client_id: str
    name: str
    status: ClientStatus
    secrets: list[_Secret]
    keys: list[PublicKey]
    apis: list[str]
    created_at: float
    updated_at: float


class MemoryRegistry(RegistryRules):
    """The whole registry in dictionaries; seeded with the five A5 products and one key.

    ``clock`` returns POSIX seconds (injected so tests can move time); ``signing_key_bits`` is
    the size of the seeded key (``None``: start with no signing key); ``signing_key`` seeds a
    given key instead (tests pass a fixture key to skip RSA generation).
    """

    def __init__(
        self,
        pepper: bytes,
        *,
        clock: Callable[[], float] = time.time,
        client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX,
        key_publish_seconds: float = DEFAULT_KEY_PUBLISH_SECONDS,
        signing_key_bits: int | None = 2048,
        signing_key: PrivateKey | None = None,
    ) -> None:
        super().__init__(pepper, clock, client_id_prefix, key_publish_seconds)
        self._clients: dict[str, _Client] = {}
        self._products: dict[str, ApiProduct] = {p.id: p for p in DEFAULT_PRODUCTS}
        self._signing: list[SigningKeyRecord] = []
        now = clock()
        # Kept apart from ``_clients``: invisible to listings and admin calls by construction.
        self._decoy = _Client(
            client_id=DECOY_CLIENT_ID,
            name="timing decoy (never authenticates)",
            status="disabled",
            secrets=[_Secret(digest=token_bytes(32), weak=False, expires_at=None)],
            keys=[],  # no RSA generation per registry; the PEM parse is cached in SqlRegistry
            apis=[DECOY_API],
            created_at=now,
            updated_at=now,
        )
        if signing_key is not None:
            self._signing.append(self._signing_record(signing_key))
        elif signing_key_bits is not None:
            self._signing.append(self._signing_record(generate_private_key(signing_key_bits)))

    def __repr__(self) -> str:
        return f"MemoryRegistry(clients={len(self._clients)}, signing_keys={len(self._signing)})"

    # -- hot path -----------------------------------------------------------------------
    async def get_client(self, client_id: str) -> ClientRecord | None:
        """The client with its live secrets, keys and subscriptions, or ``None``."""
        if not is_client_id(client_id):
            return None
        # As SqlRegistry: an unknown id builds the decoy's record, then answers None.
        client = self._clients.get(client_id)
        record = self._record(client if client is not None else self._decoy)
        return None if client is None else record

    async def list_products(self) -> Sequence[ApiProduct]:
        """Every API product, sorted by id."""
        return [self._products[k] for k in sorted(self._products)]

    async def signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Keys to publish in JWKS, the active signing key first."""
        return publishable_keys(self._signing, to_datetime(self._clock()))

    async def ping(self) -> bool:
        """Always reachable."""
        return True

    # -- administration -----------------------------------------------------------------
    async def list_clients(self) -> Sequence[ClientRecord]:
        """Every client, oldest first."""
        ordered = sorted(self._clients.values(), key=lambda c: (c.created_at, c.client_id))
        return [self._record(c) for c in ordered]

    async def add_key(self, client_id: str, key: PublicKey) -> ClientRecord:
        """Register another PoP public key for the client.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: the key is already registered for this client.
        """
        client = self._client(client_id)
        if any(k.thumbprint == key.thumbprint for k in client.keys):
            raise ConfigurationError(f"key {key.thumbprint} is already registered for this client")
        client.keys.append(key)
        return self._touch(client)

    async def remove_key(self, client_id: str, thumbprint: str) -> ClientRecord:
        """Remove a PoP public key by RFC 7638 thumbprint.

        Raises:
            NotFoundError: unknown client or no key with that thumbprint.
            ConfigurationError: it is the client's last key.
        """
        client = self._client(client_id)
        remaining = [k for k in client.keys if k.thumbprint != thumbprint]
        if len(remaining) == len(client.keys):
            raise NotFoundError(f"client {client_id!r} has no key {thumbprint!r}")
        if not remaining:
            raise ConfigurationError("cannot remove the client's last key: add the new one first")
        client.keys = remaining
        return self._touch(client)

    async def rotate_signing_key(self, *, bits: int = 2048) -> SigningKeyRecord:
        """Create the next signing key; the previous one stays published for its tokens' life.

        Raises:
            KeyFormatError: unsupported key size.
        """
        record = self._signing_record(generate_private_key(bits))
        until = to_datetime(self._clock() + self._publish_seconds)
        self._signing = [
            replace(k, publish_until=until) if k.publish_until is None and not k.retired else k
            for k in self._signing
        ]
        self._signing.append(record)
        return record

    async def retire_signing_key(self, kid: str) -> SigningKeyRecord:
        """Withdraw a rotated-out signing key from JWKS before its window ends.

        Raises:
            NotFoundError: unknown kid.
            ConfigurationError: it is the active signing key (rotate first).
        """
        for index, key in enumerate(self._signing):
            if key.kid == kid:
                if key.publish_until is None and not key.retired:
                    raise ConfigurationError("cannot retire the active signing key: rotate first")
                retired = replace(key, retired=True)
                self._signing[index] = retired
                return retired
        raise NotFoundError(f"no signing key {kid!r}")

    async def all_signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Every signing key ever created, newest first (listings)."""
        return sorted(self._signing, key=lambda k: k.created_at, reverse=True)

    async def close(self) -> None:
        """Nothing to release."""

    # -- storage steps of RegistryRules -------------------------------------------------
    async def _insert_client(self, new: NewClient) -> ClientRecord:
        if new.client_id in self._clients:
            raise ConfigurationError(f"client id {new.client_id!r} is already registered")
        for api in new.apis:
            self._product(api)
        now = self._clock()
        client = _Client(
            client_id=new.client_id,
            name=new.name,
            status="active",
            secrets=[_Secret(digest=new.digest, weak=new.weak, expires_at=None)],
            keys=list(new.keys),
            apis=sorted(new.apis),
            created_at=now,
            updated_at=now,
        )
        self._clients[new.client_id] = client
        return self._record(client)

    async def _store_status(self, client_id: str, status: ClientStatus) -> ClientRecord:
        client = self._client(client_id)
        client.status = status
        return self._touch(client)

    async def _replace_secret(
        self, client_id: str, digest: bytes, *, weak: bool, grace: float
    ) -> None:
        client = self._client(client_id)
        now = self._clock()
        current = [s for s in client.secrets if s.expires_at is None]
        kept = [replace(s, expires_at=now + grace) for s in current[:1]] if grace > 0 else []
        client.secrets = [_Secret(digest=digest, weak=weak, expires_at=None), *kept]
        self._touch(client)

    async def _store_subscription(
        self, client_id: str, api_id: str, *, subscribed: bool
    ) -> ClientRecord:
        client = self._client(client_id)
        self._product(api_id)
        others = [a for a in client.apis if a != api_id]
        client.apis = sorted([*others, api_id]) if subscribed else others
        return self._touch(client)

    async def _insert_product(self, product: ApiProduct) -> ApiProduct:
        if product.id in self._products:
            raise ConfigurationError(f"API {product.id!r} already exists")
        self._products[product.id] = product
        return product

    # -- helpers ------------------------------------------------------------------------
    def _signing_record(self, key: PrivateKey) -> SigningKeyRecord:
        return SigningKeyRecord(kid=key.thumbprint, key=key, created_at=to_datetime(self._clock()))

    def _client(self, client_id: str) -> _Client:
        client = self._clients.get(client_id)
        if client is None:
            raise NotFoundError(f"unknown client {client_id!r}")
        return client

    def _product(self, api_id: str) -> ApiProduct:
        product = self._products.get(api_id)
        if product is None:
            raise NotFoundError(f"unknown API {api_id!r}")
        return product

    def _touch(self, client: _Client) -> ClientRecord:
        client.updated_at = self._clock()
        return self._record(client)

    def _record(self, client: _Client) -> ClientRecord:
        now = self._clock()
        live = [s for s in client.secrets if s.expires_at is None or s.expires_at > now]
        return ClientRecord(
            client_id=client.client_id,
            name=client.name,
            status=client.status,
            secret_digests=tuple(s.digest for s in live),
            weak_secret=any(s.weak for s in live),
            keys=tuple(client.keys),
            apis=tuple(client.apis),
            created_at=to_datetime(client.created_at),
            updated_at=to_datetime(client.updated_at),
        )
