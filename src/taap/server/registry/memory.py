"""An in-memory :class:`~taap.server.registry.Registry` for tests and throw-away servers.

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
    check_client_id,
    check_grace,
    check_name,
    check_prefix,
    check_product,
    check_secret,
    dedupe,
    is_client_id,
    new_client_id,
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
from taap.server.registry.secrets import generate_secret, hash_secret, is_weak_secret

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


class MemoryRegistry:
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
        if not pepper:
            raise ConfigurationError("the registry needs a non-empty pepper")
        self._pepper = pepper
        self._clock = clock
        self._prefix = check_prefix(client_id_prefix)
        self._publish_seconds = key_publish_seconds
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
    async def create_client(
        self,
        *,
        name: str,
        keys: Sequence[PublicKey],
        apis: Sequence[str],
        secret: str | None = None,
        client_id: str | None = None,
    ) -> tuple[ClientRecord, str]:
        """Create a client; returns the record and the plaintext secret (shown once).

        Raises:
            ConfigurationError: bad name, id, secret, or the id is taken.
            NotFoundError: an API id is unknown.
        """
        cleaned = check_name(name)
        chosen = check_secret(secret) if secret is not None else None
        cid = check_client_id(client_id) if client_id is not None else new_client_id(self._prefix)
        if cid in self._clients:
            raise ConfigurationError(f"client id {cid!r} is already registered")
        api_ids = dedupe(apis)
        for api in api_ids:
            self._product(api)
        plain = chosen if chosen is not None else generate_secret()
        now = self._clock()
        unique: dict[str, PublicKey] = {k.thumbprint: k for k in keys}
        client = _Client(
            client_id=cid,
            name=cleaned,
            status="active",
            secrets=[self._secret(plain, weak=chosen is not None and is_weak_secret(chosen))],
            keys=list(unique.values()),
            apis=sorted(api_ids),
            created_at=now,
            updated_at=now,
        )
        self._clients[cid] = client
        return self._record(client), plain

    async def list_clients(self) -> Sequence[ClientRecord]:
        """Every client, oldest first."""
        ordered = sorted(self._clients.values(), key=lambda c: (c.created_at, c.client_id))
        return [self._record(c) for c in ordered]

    async def set_status(self, client_id: str, status: ClientStatus) -> ClientRecord:
        """Enable or disable a client.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: status is not ``active`` or ``disabled``.
        """
        if status not in ("active", "disabled"):
            raise ConfigurationError("status must be 'active' or 'disabled'")
        client = self._client(client_id)
        client.status = status
        return self._touch(client)

    async def rotate_secret(
        self, client_id: str, secret: str | None = None, *, grace: float = 0
    ) -> str:
        """Replace the client's secret; the previous one stays valid ``grace`` seconds.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: bad chosen secret or grace period.
        """
        chosen = check_secret(secret) if secret is not None else None
        check_grace(grace)
        client = self._client(client_id)
        now = self._clock()
        current = [s for s in client.secrets if s.expires_at is None]
        # At most two live secrets: the new one and the one it replaces (if a grace is asked).
        kept = [replace(s, expires_at=now + grace) for s in current[:1]] if grace > 0 else []
        plain = chosen if chosen is not None else generate_secret()
        weak = chosen is not None and is_weak_secret(chosen)
        client.secrets = [self._secret(plain, weak=weak), *kept]
        self._touch(client)
        return plain

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

    async def subscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Subscribe the client to an API product (idempotent).

        Raises:
            NotFoundError: unknown client or API.
        """
        client = self._client(client_id)
        self._product(api_id)
        if api_id not in client.apis:
            client.apis = sorted([*client.apis, api_id])
        return self._touch(client)

    async def unsubscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Remove a subscription (idempotent).

        Raises:
            NotFoundError: unknown client or API.
        """
        client = self._client(client_id)
        self._product(api_id)
        client.apis = [a for a in client.apis if a != api_id]
        return self._touch(client)

    async def create_product(self, product: ApiProduct) -> ApiProduct:
        """Add a custom API product.

        Raises:
            ConfigurationError: invalid product or the id exists.
        """
        check_product(product)
        if product.id in self._products:
            raise ConfigurationError(f"API {product.id!r} already exists")
        self._products[product.id] = product
        return product

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

    # -- helpers ------------------------------------------------------------------------
    def _signing_record(self, key: PrivateKey) -> SigningKeyRecord:
        return SigningKeyRecord(kid=key.thumbprint, key=key, created_at=to_datetime(self._clock()))

    def _secret(self, plain: str, *, weak: bool) -> _Secret:
        return _Secret(digest=hash_secret(self._pepper, plain), weak=weak, expires_at=None)

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
