"""An in-memory :class:`~taap.server.registry.port.Registry` for tests and throw-away servers.

Behaves like ``SqlRegistry`` (the contract tests run against both): same ids, same checks, same
errors, same signing-key publication rules. Nothing is persisted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from secrets import token_bytes

from taap.core.keys import PrivateKey, PublicKey, generate_private_key
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._access import (
    AccessRules,
    NewResourceServer,
    after_cutoffs,
    unknown_resource_server,
)
from taap.server.registry._decoy import DECOY_API, DECOY_CLIENT_ID
from taap.server.registry._rules import (
    DEFAULT_CLIENT_ID_PREFIX,
    DEFAULT_KEY_PUBLISH_SECONDS,
    NewClient,
    NewRevocation,
    cutoff_is_live,
    is_client_id,
    publishable_keys,
    to_datetime,
)
from taap.server.registry.port import (
    DEFAULT_PRODUCTS,
    ApiProduct,
    ClientRecord,
    ClientStatus,
    ResourceServerRecord,
    ResourceServerStatus,
    RevocationEntry,
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


@dataclass(slots=True)
class _ResourceServer:
    id: str
    name: str
    status: ResourceServerStatus
    secrets: list[_Secret]
    created_at: float
    updated_at: float


def _rotated(secrets: list[_Secret], new: _Secret, grace: float, now: float) -> list[_Secret]:
    """``new`` as the current secret; the current one kept ``grace`` seconds when ``grace`` >
    0, every other one dropped (at most two live secrets)."""
    current = [s for s in secrets if s.expires_at is None]
    kept = [replace(s, expires_at=now + grace) for s in current[:1]] if grace > 0 else []
    return [new, *kept]


def _new_client(
    client_id: str, name: str, digest: bytes, keys: list[PublicKey], now: float
) -> _Client:
    """An active client with one current secret and no subscriptions."""
    secret = _Secret(digest=digest, weak=False, expires_at=None)
    return _Client(client_id, name, "active", [secret], keys, [], now, now)


def _live(secrets: list[_Secret], now: float) -> tuple[bytes, ...]:
    return tuple(s.digest for s in secrets if s.expires_at is None or s.expires_at > now)


class MemoryRegistry(AccessRules):
    """The whole registry in dictionaries; seeded with the five products and one signing key.

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
        self._revocations: list[RevocationEntry] = []  # by seq
        self._seq = 0
        self._resource_servers: dict[str, _ResourceServer] = {}
        now = clock()
        # Kept apart from ``_clients``: invisible to listings and admin calls by construction.
        # No keys: no RSA generation per registry (SqlRegistry caches its decoy's PEM parse).
        self._decoy = _new_client(
            DECOY_CLIENT_ID, "timing decoy (never authenticates)", token_bytes(32), [], now
        )
        self._decoy.status, self._decoy.apis = "disabled", [DECOY_API]
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

    async def list_resource_servers(self) -> Sequence[ResourceServerRecord]:
        """Every resource server, oldest first."""
        ordered = sorted(self._resource_servers.values(), key=lambda r: (r.created_at, r.id))
        return [self._rs_record(r) for r in ordered]

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
        client = _new_client(new.client_id, new.name, new.digest, list(new.keys), now)
        client.secrets[0].weak, client.apis = new.weak, sorted(new.apis)
        self._clients[new.client_id] = client
        return self._record(client)

    async def _store_status(
        self, client_id: str, status: ClientStatus, revoke: NewRevocation | None
    ) -> ClientRecord:
        client = self._client(client_id)
        client.status = status
        if revoke is not None:
            self._append(client_id, [revoke])
        return self._touch(client)

    async def _replace_secret(
        self, client_id: str, digest: bytes, *, weak: bool, grace: float
    ) -> None:
        client = self._client(client_id)
        new = _Secret(digest=digest, weak=weak, expires_at=None)
        client.secrets = _rotated(client.secrets, new, grace, self._clock())
        self._touch(client)

    async def _store_subscription(
        self, client_id: str, api_id: str, *, subscribed: bool, revoke: NewRevocation | None
    ) -> ClientRecord:
        client = self._client(client_id)
        self._product(api_id)
        others = [a for a in client.apis if a != api_id]
        client.apis = sorted([*others, api_id]) if subscribed else others
        if revoke is not None:
            self._append(client_id, [revoke])
        return self._touch(client)

    async def _insert_product(self, product: ApiProduct) -> ApiProduct:
        if product.id in self._products:
            raise ConfigurationError(f"API {product.id!r} already exists")
        self._products[product.id] = product
        return product

    # -- storage steps of AccessRules -----------------------------------------------------
    async def _read_revocations(self, seq: int, limit: int) -> Sequence[RevocationEntry]:
        now = self._clock()
        return [r for r in self._revocations if r.seq > seq and r.expires_at >= now][:limit]

    async def _store_revocations(
        self, client_id: str, rows: Sequence[NewRevocation]
    ) -> list[NewRevocation]:
        self._client(client_id)
        return self._append(client_id, rows)

    async def _read_resource_server(self, rs_id: str) -> ResourceServerRecord | None:
        found = self._resource_servers.get(rs_id)
        return None if found is None else self._rs_record(found)

    async def _insert_resource_server(self, new: NewResourceServer) -> ResourceServerRecord:
        now = self._clock()
        secret = _Secret(digest=new.digest, weak=False, expires_at=None)
        server = _ResourceServer(new.id, new.name, "active", [secret], now, now)
        self._resource_servers[new.id] = server
        return self._rs_record(server)

    async def _store_resource_server_status(
        self, rs_id: str, status: ResourceServerStatus
    ) -> ResourceServerRecord:
        server = self._resource_server(rs_id)
        server.status, server.updated_at = status, self._clock()
        return self._rs_record(server)

    async def _replace_resource_server_secret(
        self, rs_id: str, digest: bytes, *, grace: float
    ) -> None:
        server = self._resource_server(rs_id)
        now = self._clock()
        new = _Secret(digest=digest, weak=False, expires_at=None)
        server.secrets, server.updated_at = _rotated(server.secrets, new, grace, now), now

    async def _delete_client(self, client_id: str, revoke: NewRevocation) -> None:
        self._client(client_id)
        self._append(client_id, [revoke])
        del self._clients[client_id]

    async def _delete_resource_server(self, rs_id: str) -> None:
        self._resource_server(rs_id)
        del self._resource_servers[rs_id]

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

    def _append(self, client_id: str, rows: Sequence[NewRevocation]) -> list[NewRevocation]:
        """As ``append_revocations`` of ``SqlRegistry``; ``rows`` as stored."""
        now = self._clock()
        self._revocations = [r for r in self._revocations if r.expires_at >= now]
        done = {r.jti for r in self._revocations if r.kind == "token" and r.client_id == client_id}
        stored = after_cutoffs(rows, self._newest_cutoff(client_id))
        for row in stored:
            if row.kind == "token" and row.jti in done:
                continue
            done.add(row.jti)
            self._seq += 1
            self._revocations.append(
                RevocationEntry(seq=self._seq, client_id=client_id, **asdict(row))
            )
        return stored

    def _newest_cutoff(self, client_id: str) -> int:
        mine = (r.not_before or 0 for r in self._revocations if r.client_id == client_id)
        return max(mine, default=0)

    def _resource_server(self, rs_id: str) -> _ResourceServer:
        server = self._resource_servers.get(rs_id)
        if server is None:
            raise unknown_resource_server(rs_id)
        return server

    def _rs_record(self, server: _ResourceServer) -> ResourceServerRecord:
        return ResourceServerRecord(
            id=server.id,
            name=server.name,
            status=server.status,
            secret_digests=_live(server.secrets, self._clock()),
            created_at=to_datetime(server.created_at),
            updated_at=to_datetime(server.updated_at),
        )

    def _touch(self, client: _Client) -> ClientRecord:
        client.updated_at = self._clock()
        return self._record(client)

    def _record(self, client: _Client) -> ClientRecord:
        now = self._clock()
        live = [s for s in client.secrets if s.expires_at is None or s.expires_at > now]
        # As SqlRegistry: the newest stored cutoff, counted while it can still catch a token.
        newest = self._newest_cutoff(client.client_id)
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
            tokens_not_before=newest if newest and cutoff_is_live(newest, now) else 0,
        )
