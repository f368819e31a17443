"""The client registry's ports (docs/registry.md) and the records they carry.

:class:`RegistryReader` is what the token server reads on the hot path; :class:`RegistryAdmin`
is what the CLI (and a developer portal) administers; :class:`Registry` is both, as every
implementation provides: ``taap.server.registry.sql.SqlRegistry`` (SQLite by default,
PostgreSQL for production) and ``taap.server.registry.memory.MemoryRegistry`` (tests).

Every method may raise :class:`~taap.errors.UnavailableError` when the backing store cannot be
reached. On the hot path "not found" is ``None``, never an exception; administrative calls raise
:class:`~taap.errors.NotFoundError` for an unknown client, API, key thumbprint or kid, and
:class:`~taap.errors.ConfigurationError` for refused input (docs/registry.md lists the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from taap.core.keys import PrivateKey, PublicKey
from taap.core.revocation import RevocationEntry, RevocationKind

__all__ = [
    "DEFAULT_PRODUCTS",
    "LONGEST_TOKEN_SECONDS",
    "REVOCATION_SLACK_SECONDS",
    "ApiProduct",
    "ClientRecord",
    "ClientStatus",
    "Registry",
    "RegistryAdmin",
    "RegistryReader",
    "ResourceServerRecord",
    "ResourceServerStatus",
    "RevocationEntry",
    "RevocationKind",
    "SigningKeyRecord",
    "TokenServerVersion",
]

ClientStatus = Literal["active", "disabled"]
ResourceServerStatus = Literal["active", "disabled"]
TokenServerVersion = Literal["v2", "v6"]

#: The longest access-token lifetime ``TAAP_TOKEN_TTL`` allows: a cutoff older than this (plus
#: the slack below) can no longer catch a token that any guard still accepts.
LONGEST_TOKEN_SECONDS = 86400
#: How long a revocation is kept past the last moment its token could expire: the largest
#: verification leeway ``TAAP_LEEWAY`` allows (300 s), since a guard accepts a token that long
#: after its ``exp``, plus a minute of clock skew between nodes.
REVOCATION_SLACK_SECONDS = 300 + 60


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiProduct:
    """An API product of the DevEdge catalogue, served by one token-server version."""

    id: str
    name: str
    token_server: TokenServerVersion
    base_path: str


#: The five products of the seed's table (docs/protocol.md#the-client-registry).
DEFAULT_PRODUCTS: tuple[ApiProduct, ...] = (
    ApiProduct(
        id="call-verification",
        name="Call Verification",
        token_server="v6",
        base_path="/call-verification/v1",
    ),
    ApiProduct(
        id="connectivity", name="Connectivity", token_server="v2", base_path="/iot-connectivity/v1"
    ),
    ApiProduct(
        id="fraud-prevention",
        name="Fraud Prevention",
        token_server="v6",
        base_path="/fraud-prevention/v1",
    ),
    ApiProduct(id="location", name="Location", token_server="v2", base_path="/location/v1"),
    ApiProduct(
        id="sms-notification", name="SMS Notification", token_server="v2", base_path="/sms/v1"
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ClientRecord:
    """A registered client. ``secret_digests`` are HMAC-SHA-256(pepper, secret) values."""

    client_id: str
    name: str
    status: ClientStatus
    secret_digests: tuple[bytes, ...]
    weak_secret: bool
    keys: tuple[PublicKey, ...]
    apis: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    #: The newest cutoff of this client's live tokens (``revoke_client_tokens``, a disable or
    #: an unsubscribe), in POSIX seconds; 0 when none is live. A token issued with an ``iat``
    #: below it is caught by that cutoff, so the token server issues with
    #: ``iat = max(int(now), tokens_not_before)``.
    tokens_not_before: int = 0

    def __repr__(self) -> str:
        # Digests are not secrets, but nothing secret-derived belongs in a repr either.
        return (
            f"ClientRecord(client_id={self.client_id!r}, name={self.name!r}, "
            f"status={self.status!r}, keys={len(self.keys)}, apis={list(self.apis)!r})"
        )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ResourceServerRecord:
    """A registered resource server (an introspection caller). ``secret_digests`` are
    HMAC-SHA-256(pepper, secret) values of its live secrets, as for clients."""

    id: str
    name: str
    status: ResourceServerStatus
    secret_digests: tuple[bytes, ...]
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return (
            f"ResourceServerRecord(id={self.id!r}, name={self.name!r}, status={self.status!r}, "
            f"secrets={len(self.secret_digests)})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKeyRecord:
    """A token-server signing key. The newest non-retired key signs; others stay in JWKS
    until ``publish_until`` (the last token they signed has expired)."""

    kid: str
    key: PrivateKey
    created_at: datetime
    publish_until: datetime | None = None
    retired: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class RegistryReader(Protocol):
    """The read port: what the token server asks on every request (``TokenEndpoints``) and
    for JWKS and readiness. Kept small so the hot path depends on nothing it does not call."""

    async def get_client(self, client_id: str) -> ClientRecord | None: ...

    async def list_products(self) -> Sequence[ApiProduct]: ...

    async def signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Keys to publish in JWKS, the active signing key first."""
        ...

    async def revocations_after(self, seq: int, *, limit: int = 10000) -> Sequence[RevocationEntry]:
        """Revocations with a ``seq`` above ``seq`` that have not expired, oldest first, at
        most ``limit`` of them (``ConfigurationError`` outside 1-100000)."""
        ...

    async def get_resource_server(self, rs_id: str) -> ResourceServerRecord | None:
        """The resource server with its live secrets, or ``None``."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class RegistryAdmin(Protocol):
    """The admin port: what the CLI (and a developer portal) changes and lists."""

    async def create_client(
        self,
        *,
        name: str,
        keys: Sequence[PublicKey],
        apis: Sequence[str],
        secret: str | None = None,
        client_id: str | None = None,
    ) -> tuple[ClientRecord, str]:
        """Create a client; returns the record and the plaintext secret (shown once)."""
        ...

    async def list_clients(self) -> Sequence[ClientRecord]: ...

    async def set_status(self, client_id: str, status: ClientStatus) -> ClientRecord:
        """Enable or disable a client; disabling also revokes its live tokens (a cutoff)."""
        ...

    async def rotate_secret(
        self, client_id: str, secret: str | None = None, *, grace: float = 0
    ) -> str:
        """Replace the secret; the previous one stays valid ``grace`` seconds (at most two
        live secrets, SECURITY.md A4). Returns the new plaintext secret (shown once)."""
        ...

    async def add_key(self, client_id: str, key: PublicKey) -> ClientRecord: ...

    async def remove_key(self, client_id: str, thumbprint: str) -> ClientRecord: ...

    async def subscribe(self, client_id: str, api_id: str) -> ClientRecord: ...

    async def unsubscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Remove a subscription; the client's live tokens lose the product (a cutoff)."""
        ...

    async def remove_client(self, client_id: str) -> None:
        """Delete the client; a cutoff of its live tokens is written first (same
        transaction), so tokens it already holds stop working everywhere."""
        ...

    async def revoke_tokens(
        self, client_id: str, jtis: Sequence[str], *, expires_at: int | None = None
    ) -> None:
        """Revoke the client's tokens ``jtis``, whose ``exp`` is ``expires_at`` (``None``:
        unknown, kept as long as the longest token lives)."""
        ...

    async def revoke_client_tokens(self, client_id: str) -> int:
        """Revoke every token the client holds now; returns the cutoff's ``not_before``."""
        ...

    async def create_resource_server(self, *, name: str) -> tuple[ResourceServerRecord, str]:
        """Register a resource server; returns the record and its plaintext secret (shown
        once)."""
        ...

    async def list_resource_servers(self) -> Sequence[ResourceServerRecord]: ...

    async def set_resource_server_status(
        self, rs_id: str, status: ResourceServerStatus
    ) -> ResourceServerRecord: ...

    async def rotate_resource_server_secret(self, rs_id: str, *, grace: float = 0) -> str:
        """Replace the secret (the previous one stays valid ``grace`` seconds); returns the new
        plaintext secret (shown once)."""
        ...

    async def remove_resource_server(self, rs_id: str) -> None: ...

    async def create_product(self, product: ApiProduct) -> ApiProduct: ...

    async def rotate_signing_key(self, *, bits: int = 2048) -> SigningKeyRecord: ...

    async def retire_signing_key(self, kid: str) -> SigningKeyRecord:
        """Withdraw a rotated-out key from JWKS early (the active key cannot be retired)."""
        ...

    async def all_signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Every signing key, retired and expired ones included, newest first (listings)."""
        ...

    async def close(self) -> None: ...


class Registry(RegistryReader, RegistryAdmin, Protocol):
    """Both ports: what an implementation provides, and what a caller holds that serves
    tokens and administers (the sandbox). All times are UTC."""
