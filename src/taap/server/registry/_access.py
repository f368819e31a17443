"""Rules both registry implementations share for revocations and resource servers.

:class:`AccessRules` extends :class:`~taap.server.registry._rules.RegistryRules` with the
revocation calls and the administration of resource servers (the callers of introspection).
As there, every check and generated value is made here, once, and each call ends in one
storage step the implementation writes, so ``MemoryRegistry`` and ``SqlRegistry`` refuse the
same input with the same errors (the contract tests run both).
"""

from __future__ import annotations

import math
import re
import secrets
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._rules import (
    CLIENT_ID_ALPHABET,
    CUTOFF_SECONDS,
    NewRevocation,
    RegistryRules,
    check_grace,
    check_name,
    cutoff,
    dedupe,
)
from taap.server.registry.port import (
    REVOCATION_SLACK_SECONDS,
    ResourceServerRecord,
    ResourceServerStatus,
    RevocationEntry,
)
from taap.server.registry.secrets import generate_secret, hash_secret

__all__ = [
    "MAX_JTIS",
    "MAX_REVOCATIONS_PAGE",
    "RESOURCE_SERVER_PREFIX",
    "AccessRules",
    "NewResourceServer",
    "after_cutoffs",
    "check_jtis",
    "is_resource_server_id",
    "new_resource_server_id",
    "token_revocations",
    "unknown_resource_server",
]

#: Resource-server ids start with this, so an id says which kind of credential it is.
RESOURCE_SERVER_PREFIX = "rs_"
#: Token ids one call may revoke (the revocation endpoint sends one or two).
MAX_JTIS = 1000
#: The most rows one ``revocations_after`` call returns.
MAX_REVOCATIONS_PAGE = 100_000

_RS_ID = re.compile(r"rs_[A-Za-z0-9]{32}")
_MAX_JTI = 256
_MAX_SEQ = 2**63 - 1


def new_resource_server_id() -> str:
    """``rs_`` + 32 random alphanumerics."""
    return RESOURCE_SERVER_PREFIX + "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(32))


def is_resource_server_id(text: str) -> bool:
    """True when ``text`` has the shape of a resource-server id; anything else (hostile Basic
    credentials) is unknown without a database read."""
    return _RS_ID.fullmatch(text) is not None


def unknown_resource_server(rs_id: str) -> NotFoundError:
    """The error for an unknown id (a hostile id is cut short, not echoed in full)."""
    return NotFoundError(f"unknown resource server {rs_id[:64]!r}")


def check_jtis(jtis: Sequence[str]) -> tuple[str, ...]:
    """Token ids to revoke, without repeats.

    Raises:
        ConfigurationError: none, more than 1000, or one is not 1-256 printable characters.
    """
    if isinstance(jtis, str) or not 0 < len(jtis) <= MAX_JTIS:
        raise ConfigurationError(f"give 1-{MAX_JTIS} token ids (jti) to revoke")
    for jti in jtis:
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI or not jti.isprintable():
            raise ConfigurationError(f"a token id (jti) must be 1-{_MAX_JTI} printable characters")
    return dedupe(jtis)


def token_revocations(
    jtis: Sequence[str], expires_at: int | None, now: float
) -> list[NewRevocation]:
    """Rows revoking ``jtis``, whose tokens expire at ``expires_at`` (``None``: unknown).

    A row is kept past the token's ``exp`` by the slack a guard still accepts it for, and never
    longer than the longest token can live; a token that no guard can accept any more needs no
    row at all (an empty list).

    Raises:
        ConfigurationError: ``expires_at`` is not an integer.
    """
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int)):
        raise ConfigurationError("expires_at must be POSIX seconds (an integer)")
    longest = math.floor(now) + CUTOFF_SECONDS
    keep = longest if expires_at is None else min(expires_at + REVOCATION_SLACK_SECONDS, longest)
    if keep < now:
        return []
    return [NewRevocation(kind="token", jti=jti, expires_at=keep) for jti in jtis]


def after_cutoffs(rows: Sequence[NewRevocation], newest: int) -> list[NewRevocation]:
    """``rows`` with each cutoff moved past ``newest`` (the client's newest stored cutoff) and
    past the cutoffs before it in ``rows``, when it is not later already.

    A token issued after an earlier cutoff is stamped ``iat`` = that cutoff (the token server
    issues at or after a client's newest cutoff). A second change in the same second would
    otherwise get the same ``not_before`` and miss that token, although it was issued before
    the change.
    """
    moved: list[NewRevocation] = []
    for row in rows:
        if row.not_before is not None and row.not_before <= newest:
            shift = newest + 1 - row.not_before
            row = replace(row, not_before=newest + 1, expires_at=row.expires_at + shift)
        newest = max(newest, row.not_before or 0)
        moved.append(row)
    return moved


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class NewResourceServer:
    """A resource server that passed the checks, ready to store (its secret as the digest)."""

    id: str
    name: str
    digest: bytes

    def __repr__(self) -> str:
        return f"NewResourceServer(id={self.id!r}, name={self.name!r})"


class AccessRules(RegistryRules):
    """Revocations and resource servers, on top of the client rules."""

    # -- revocations ----------------------------------------------------------------------
    async def revocations_after(self, seq: int, *, limit: int = 10000) -> Sequence[RevocationEntry]:
        """Revocations with a ``seq`` above ``seq`` that have not expired, oldest first.

        Raises:
            ConfigurationError: ``limit`` outside 1-100000, or ``seq`` not an integer.
            UnavailableError: the database cannot be reached.
        """
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise ConfigurationError("seq must be an integer")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ConfigurationError("limit must be an integer")
        if not 0 < limit <= MAX_REVOCATIONS_PAGE:
            raise ConfigurationError(f"limit must be between 1 and {MAX_REVOCATIONS_PAGE}")
        # Sequence numbers start at 1 and fit 63 bits: the clamp keeps the query in range.
        return await self._read_revocations(max(0, min(seq, _MAX_SEQ)), limit)

    async def revoke_tokens(
        self, client_id: str, jtis: Sequence[str], *, expires_at: int | None = None
    ) -> None:
        """Revoke the client's tokens ``jtis``; ``expires_at`` is their ``exp`` (``None``:
        unknown, so the row is kept as long as the longest token lives). Revoking a token
        again adds nothing.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: bad token ids or ``expires_at``.
            UnavailableError: the database cannot be reached.
        """
        rows = token_revocations(check_jtis(jtis), expires_at, self._clock())
        await self._store_revocations(client_id, rows)

    async def revoke_client_tokens(self, client_id: str) -> int:
        """Revoke every token the client holds now (a cutoff); returns its ``not_before``.

        Raises:
            NotFoundError: unknown client.
            UnavailableError: the database cannot be reached.
        """
        [stored] = await self._store_revocations(client_id, [cutoff(self._clock())])
        assert stored.not_before is not None  # a cutoff always has one
        return stored.not_before

    # -- resource servers ---------------------------------------------------------------
    async def get_resource_server(self, rs_id: str) -> ResourceServerRecord | None:
        """The resource server with its live secrets, or ``None``.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        if not is_resource_server_id(rs_id):
            return None
        return await self._read_resource_server(rs_id)

    async def create_resource_server(self, *, name: str) -> tuple[ResourceServerRecord, str]:
        """Register a resource server; returns the record and its secret (shown once).

        Raises:
            ConfigurationError: bad name.
            UnavailableError: the database cannot be reached.
        """
        cleaned = check_name(name, "resource server")
        plain = generate_secret()
        new = NewResourceServer(
            id=new_resource_server_id(), name=cleaned, digest=hash_secret(self._pepper, plain)
        )
        return await self._insert_resource_server(new), plain

    async def set_resource_server_status(
        self, rs_id: str, status: ResourceServerStatus
    ) -> ResourceServerRecord:
        """Enable or disable a resource server.

        Raises:
            NotFoundError: unknown resource server.
            ConfigurationError: status is not ``active`` or ``disabled``.
            UnavailableError: the database cannot be reached.
        """
        if status not in ("active", "disabled"):
            raise ConfigurationError("status must be 'active' or 'disabled'")
        if not is_resource_server_id(rs_id):
            raise unknown_resource_server(rs_id)
        return await self._store_resource_server_status(rs_id, status)

    async def rotate_resource_server_secret(self, rs_id: str, *, grace: float = 0) -> str:
        """Replace the secret; the previous one stays valid ``grace`` seconds. Returns the new
        secret (shown once).

        Raises:
            NotFoundError: unknown resource server.
            ConfigurationError: bad grace period.
            UnavailableError: the database cannot be reached.
        """
        check_grace(grace)
        if not is_resource_server_id(rs_id):
            raise unknown_resource_server(rs_id)
        plain = generate_secret()
        await self._replace_resource_server_secret(
            rs_id, hash_secret(self._pepper, plain), grace=grace
        )
        return plain

    async def remove_client(self, client_id: str) -> None:
        """Delete a client with its secrets, keys and subscriptions. A cutoff of its live
        tokens is written first, in the same transaction: a token issued before the removal
        is refused by every guard although the client is gone (revocations outlive clients).

        Raises:
            NotFoundError: unknown client.
            UnavailableError: the database cannot be reached.
        """
        await self._delete_client(client_id, cutoff(self._clock()))

    async def remove_resource_server(self, rs_id: str) -> None:
        """Remove a resource server and its secrets.

        Raises:
            NotFoundError: unknown resource server.
            UnavailableError: the database cannot be reached.
        """
        if not is_resource_server_id(rs_id):
            raise unknown_resource_server(rs_id)
        await self._delete_resource_server(rs_id)

    # -- storage steps, one per call above ----------------------------------------------
    @abstractmethod
    async def _read_revocations(self, seq: int, limit: int) -> Sequence[RevocationEntry]:
        """Rows with ``seq`` above ``seq`` and ``expires_at >= now``, by ``seq``, ≤ ``limit``."""

    @abstractmethod
    async def _store_revocations(
        self, client_id: str, rows: Sequence[NewRevocation]
    ) -> list[NewRevocation]:
        """Check the client exists (``NotFoundError``), prune expired rows, append ``rows``
        (a token already revoked for this client is skipped, a cutoff moved past the client's
        newest one: :func:`after_cutoffs`); ``rows`` as stored."""

    @abstractmethod
    async def _delete_client(self, client_id: str, revoke: NewRevocation) -> None:
        """Append ``revoke`` for the client, then remove it with everything it owns
        (``NotFoundError`` when unknown), all or nothing."""

    @abstractmethod
    async def _read_resource_server(self, rs_id: str) -> ResourceServerRecord | None:
        """The resource server with its live secrets, or ``None``."""

    @abstractmethod
    async def _insert_resource_server(self, new: NewResourceServer) -> ResourceServerRecord:
        """Store ``new``, active, with one current secret."""

    @abstractmethod
    async def _store_resource_server_status(
        self, rs_id: str, status: ResourceServerStatus
    ) -> ResourceServerRecord:
        """Set the status of an existing resource server (``NotFoundError`` otherwise)."""

    @abstractmethod
    async def _replace_resource_server_secret(
        self, rs_id: str, digest: bytes, *, grace: float
    ) -> None:
        """Make ``digest`` the current secret; the newest previous one lives ``grace`` seconds
        more when ``grace`` > 0, every other one goes."""

    @abstractmethod
    async def _delete_resource_server(self, rs_id: str) -> None:
        """Remove the resource server and its secrets (``NotFoundError`` when unknown)."""
