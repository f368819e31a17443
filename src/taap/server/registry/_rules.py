"""Rules every registry implementation shares (docs/registry.md): ids, input checks, key
publication.

Kept apart from the storage adapters so ``MemoryRegistry`` and ``SqlRegistry`` refuse exactly the
same input with exactly the same errors, which the contract tests pin. :class:`RegistryRules` is
their common base: the admin calls whose checks and generated values are the same everywhere,
each ending in one storage step the implementation writes.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from taap.core.keys import PublicKey
from taap.errors import ConfigurationError
from taap.server.registry.port import (
    LONGEST_TOKEN_SECONDS,
    REVOCATION_SLACK_SECONDS,
    ApiProduct,
    ClientRecord,
    ClientStatus,
    RevocationKind,
    SigningKeyRecord,
)
from taap.server.registry.secrets import generate_secret, hash_secret, is_weak_secret

__all__ = [
    "CLIENT_ID_ALPHABET",
    "CUTOFF_SECONDS",
    "DEFAULT_CLIENT_ID_PREFIX",
    "DEFAULT_KEY_PUBLISH_SECONDS",
    "NewClient",
    "NewRevocation",
    "RegistryRules",
    "check_client_id",
    "check_grace",
    "check_name",
    "check_prefix",
    "check_product",
    "check_secret",
    "cutoff",
    "cutoff_is_live",
    "dedupe",
    "is_client_id",
    "new_client_id",
    "publishable_keys",
    "to_datetime",
]

DEFAULT_CLIENT_ID_PREFIX = "taap-"
CLIENT_ID_ALPHABET = string.ascii_letters + string.digits

#: How long a rotated-out signing key stays in JWKS: the token lifetime (3600 s,
#: docs/protocol.md#the-token-endpoints) + the verification leeway (10 s, docs/protocol.md#settings)
#: + the node key-refresh interval (30 s, docs/protocol.md#settings), because a node that has not
#: refreshed yet may still sign with the old key for up to that interval after rotation, + the
#: guards' JWKS min-refresh (30 s, docs/protocol.md#settings): nodes keep signing with the old key
#: until the new one has been published that long (publish before use, ``taap.server.issuance``).
DEFAULT_KEY_PUBLISH_SECONDS = 3600 + 10 + 30 + 30

#: How long a cutoff row is kept: every token it can catch was issued before its
#: ``not_before``, so the last of them is accepted until ``not_before`` + the longest lifetime
#: + the leeway and skew slack.
CUTOFF_SECONDS = LONGEST_TOKEN_SECONDS + REVOCATION_SLACK_SECONDS

# A client id travels in Basic auth (split on the first ':'), in URLs and in audit lines, so it
# stays printable ASCII without ':' or whitespace.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~@+\-]{1,128}")
_PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
_MAX_NAME = 200
_MAX_SECRET = 512


def check_prefix(prefix: str) -> str:
    """A client-id prefix (docs/protocol.md#the-client-registry: configurable), returned unchanged
    when acceptable.

    Raises:
        ConfigurationError: longer than 64 characters or outside the client-id alphabet.
    """
    if len(prefix) > 64 or not (prefix == "" or _CLIENT_ID.fullmatch(prefix)):
        raise ConfigurationError(
            "client id prefix must be at most 64 characters of A-Z a-z 0-9 . _ ~ @ + -"
        )
    return prefix


def new_client_id(prefix: str = DEFAULT_CLIENT_ID_PREFIX) -> str:
    """``prefix`` + 32 random alphanumerics (docs/protocol.md#the-client-registry)."""
    return prefix + "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(32))


def is_client_id(text: str) -> bool:
    """True when ``text`` has the shape every stored client id has
    (docs/protocol.md#the-client-registry or ``--client-id``).

    The hot path asks this first: anything else (NUL bytes, 10 kB strings) cannot name a client,
    so it answers "unknown" without reaching the database, which would reject some such input
    with an error instead.
    """
    return _CLIENT_ID.fullmatch(text) is not None


def check_client_id(client_id: str) -> str:
    """A chosen client id (``--client-id``), returned unchanged when acceptable.

    Raises:
        ConfigurationError: empty, longer than 128 characters, or outside ``A-Za-z0-9._~@+-``.
    """
    if not _CLIENT_ID.fullmatch(client_id):
        raise ConfigurationError(
            "client id must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ + - (no ':' or spaces)"
        )
    return client_id


def check_name(name: str, what: str = "client") -> str:
    """A client (or ``what``'s) name, stripped.

    Raises:
        ConfigurationError: blank or longer than 200 characters.
    """
    cleaned = name.strip()
    if not cleaned or len(cleaned) > _MAX_NAME or not cleaned.isprintable():
        raise ConfigurationError(f"{what} name must be 1-{_MAX_NAME} printable characters")
    return cleaned


def check_secret(secret: str) -> str:
    """A chosen secret (``--secret``); may contain ':' (Basic splits on the first one).

    Raises:
        ConfigurationError: empty, longer than 512 characters, or with control characters.
    """
    if not secret or len(secret) > _MAX_SECRET or not secret.isprintable():
        raise ConfigurationError(f"client secret must be 1-{_MAX_SECRET} printable characters")
    return secret


def check_grace(grace: float) -> float:
    """Seconds the previous secret stays valid after a rotation.

    Raises:
        ConfigurationError: negative or more than 30 days.
    """
    if not 0 <= grace <= 30 * 86400:
        raise ConfigurationError("secret grace period must be between 0 and 2592000 seconds")
    return grace


def check_product(product: ApiProduct) -> ApiProduct:
    """A custom API product, returned unchanged when acceptable.

    Raises:
        ConfigurationError: bad id, blank name, unknown token server, or a base path that is not
            an absolute path.
    """
    if not _PRODUCT_ID.fullmatch(product.id):
        raise ConfigurationError(
            "API id must be 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit"
        )
    if not product.name.strip() or len(product.name) > _MAX_NAME:
        raise ConfigurationError(f"API name must be 1-{_MAX_NAME} characters")
    if product.token_server not in ("v2", "v6"):
        raise ConfigurationError("API token server must be 'v2' or 'v6'")
    path = product.base_path
    if not path.startswith("/") or path != path.strip() or "//" in path or "?" in path:
        raise ConfigurationError("API base path must be an absolute path such as /sms/v1")
    if len(path) > 1 and path.endswith("/"):
        raise ConfigurationError("API base path must not end with '/'")
    return product


def to_datetime(timestamp: float) -> datetime:
    """A POSIX timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


def publishable_keys(keys: Iterable[SigningKeyRecord], now: datetime) -> list[SigningKeyRecord]:
    """Keys for JWKS at ``now``: the active key (newest non-retired, no ``publish_until``)
    first, then rotated-out keys still inside their publication window, newest first."""
    live = [k for k in keys if not k.retired and (k.publish_until is None or k.publish_until > now)]
    live.sort(key=lambda k: (k.publish_until is None, k.created_at), reverse=True)
    return live


def dedupe(items: Sequence[str]) -> tuple[str, ...]:
    """``items`` without repeats, first occurrence kept."""
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRevocation:
    """A revocation row ready to store for one client (storage adds ``seq`` and the time)."""

    kind: RevocationKind
    expires_at: int
    jti: str | None = None
    api_id: str | None = None
    not_before: int | None = None


def cutoff(now: float, api_id: str | None = None) -> NewRevocation:
    """The cutoff of a client's tokens issued before now (``api_id``: only that product).

    ``not_before`` is the next whole second: ``iat`` has whole seconds, so a token issued in
    the same second as the change counts as issued before it. The token server issues with
    ``iat = max(int(now), tokens_not_before)``, so a token issued after the change is never
    caught by it.
    """
    not_before = math.floor(now) + 1
    return NewRevocation(
        kind="client" if api_id is None else "product",
        api_id=api_id,
        not_before=not_before,
        expires_at=not_before + CUTOFF_SECONDS,
    )


def cutoff_is_live(not_before: int, now: float) -> bool:
    """True while a cutoff written with ``not_before`` can still catch an accepted token."""
    return not_before + CUTOFF_SECONDS >= now


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class NewClient:
    """A client that passed the checks, ready to store: its secret only as the peppered digest."""

    client_id: str
    name: str
    digest: bytes
    weak: bool
    keys: tuple[PublicKey, ...]  # one per thumbprint, first occurrence kept
    apis: tuple[str, ...]  # without repeats; storage refuses an unknown one

    def __repr__(self) -> str:
        return f"NewClient(client_id={self.client_id!r}, name={self.name!r})"


class RegistryRules(ABC):
    """The part of :class:`~taap.server.registry.port.Registry` both implementations share.

    Every check here runs before storage is touched, in the same order for both, so both raise
    the same first error for the same bad input. ``clock`` returns POSIX seconds.
    """

    def __init__(
        self, pepper: bytes, clock: Callable[[], float], prefix: str, publish_seconds: float
    ) -> None:
        if not pepper:
            raise ConfigurationError("the registry needs a non-empty pepper")
        self._pepper = pepper
        self._clock = clock
        self._prefix = check_prefix(prefix)
        self._publish_seconds = publish_seconds

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
            ConfigurationError: bad name, id or secret, or the id is taken.
            NotFoundError: an API id is unknown.
            UnavailableError: the database cannot be reached.
        """
        cleaned = check_name(name)
        plain, weak = self._new_secret(secret)
        cid = check_client_id(client_id) if client_id is not None else new_client_id(self._prefix)
        new = NewClient(
            client_id=cid,
            name=cleaned,
            digest=hash_secret(self._pepper, plain),
            weak=weak,
            keys=tuple({k.thumbprint: k for k in keys}.values()),
            apis=dedupe(apis),
        )
        return await self._insert_client(new), plain

    async def set_status(self, client_id: str, status: ClientStatus) -> ClientRecord:
        """Enable or disable a client; disabling also writes a cutoff of its live tokens, in
        the same transaction.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: status is not ``active`` or ``disabled``.
            UnavailableError: the database cannot be reached.
        """
        if status not in ("active", "disabled"):
            raise ConfigurationError("status must be 'active' or 'disabled'")
        revoke = cutoff(self._clock()) if status == "disabled" else None
        return await self._store_status(client_id, status, revoke)

    async def rotate_secret(
        self, client_id: str, secret: str | None = None, *, grace: float = 0
    ) -> str:
        """Replace the client's secret; the previous one stays valid ``grace`` seconds.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: bad chosen secret or grace period.
            UnavailableError: the database cannot be reached.
        """
        plain, weak = self._new_secret(secret)
        check_grace(grace)
        digest = hash_secret(self._pepper, plain)
        await self._replace_secret(client_id, digest, weak=weak, grace=grace)
        return plain

    async def subscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Subscribe the client to an API product (idempotent).

        Raises:
            NotFoundError: unknown client or API.
            UnavailableError: the database cannot be reached.
        """
        return await self._store_subscription(client_id, api_id, subscribed=True, revoke=None)

    async def unsubscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Remove a subscription (idempotent); the client's live tokens lose the product (a
        cutoff written in the same transaction, even when there was no subscription: a
        token may still carry a product whose subscription went earlier).

        Raises:
            NotFoundError: unknown client or API.
            UnavailableError: the database cannot be reached.
        """
        revoke = cutoff(self._clock(), api_id)
        return await self._store_subscription(client_id, api_id, subscribed=False, revoke=revoke)

    async def create_product(self, product: ApiProduct) -> ApiProduct:
        """Add a custom API product.

        Raises:
            ConfigurationError: invalid product or the id exists.
            UnavailableError: the database cannot be reached.
        """
        return await self._insert_product(check_product(product))

    @staticmethod
    def _new_secret(chosen: str | None) -> tuple[str, bool]:
        """The plaintext secret (``chosen``, checked, else generated) and its weak flag."""
        if chosen is None:
            return generate_secret(), False
        return check_secret(chosen), is_weak_secret(chosen)

    # -- storage steps, one per call above ----------------------------------------------
    @abstractmethod
    async def _insert_client(self, new: NewClient) -> ClientRecord:
        """Store ``new`` with one current secret; refuse a taken id, then an unknown API."""

    @abstractmethod
    async def _store_status(
        self, client_id: str, status: ClientStatus, revoke: NewRevocation | None
    ) -> ClientRecord:
        """Set the status of an existing client (``NotFoundError`` otherwise) and append
        ``revoke``, if any, in the same transaction."""

    @abstractmethod
    async def _replace_secret(
        self, client_id: str, digest: bytes, *, weak: bool, grace: float
    ) -> None:
        """Make ``digest`` the current secret; the newest previous one lives ``grace`` seconds
        more when ``grace`` > 0, every other one goes (at most two live secrets)."""

    @abstractmethod
    async def _store_subscription(
        self, client_id: str, api_id: str, *, subscribed: bool, revoke: NewRevocation | None
    ) -> ClientRecord:
        """Add or remove one subscription, idempotently (unknown client, then unknown API:
        ``NotFoundError``), and append ``revoke``, if any, in the same transaction."""

    @abstractmethod
    async def _insert_product(self, product: ApiProduct) -> ApiProduct:
        """Store a checked product (``ConfigurationError`` when its id exists)."""
