"""``SqlRegistry``'s token-server signing keys (table ``signing_keys``): publication for JWKS,
rotation, retirement, and encryption at rest under the key-encryption key (docs/protocol.md#settings
``TAAP_KEY_ENCRYPTION_KEY``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from taap.core.keys import PrivateKey, generate_private_key, load_private_key
from taap.errors import ConfigurationError, KeyFormatError, NotFoundError
from taap.server.registry._rules import publishable_keys, to_datetime
from taap.server.registry._sql_core import TIMESTAMP, SqlRegistryCore, utc
from taap.server.registry._sql_tables import signing_keys
from taap.server.registry.port import SigningKeyRecord

__all__ = ["SqlSigningKeys", "ensure_signing_key"]

_ACTIVE_KEY_UPDATE = (
    sa.update(signing_keys)
    .where(signing_keys.c.publish_until.is_(None), signing_keys.c.retired.is_(False))
    .values(publish_until=sa.bindparam("until", type_=TIMESTAMP))
)


class SqlSigningKeys(SqlRegistryCore):
    """Signing keys, parsed once per stored PEM."""

    async def signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Keys to publish in JWKS, the active signing key first.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())
        query = sa.select(signing_keys).where(
            signing_keys.c.retired.is_(False),
            sa.or_(signing_keys.c.publish_until.is_(None), signing_keys.c.publish_until > now),
        )
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return publishable_keys((self._signing_record(r) for r in rows), now)

    async def all_signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Every signing key, retired and expired ones included, newest first.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        query = sa.select(signing_keys).order_by(signing_keys.c.created_at.desc())
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return [self._signing_record(r) for r in rows]

    async def rotate_signing_key(self, *, bits: int = 2048) -> SigningKeyRecord:
        """Create the next signing key; the previous one stays published for its tokens' life.

        Raises:
            KeyFormatError: unsupported key size.
            UnavailableError: the database cannot be reached.
        """
        key = generate_private_key(bits)  # slow: outside the transaction
        now = to_datetime(self._clock())
        until = to_datetime(self._clock() + self._publish_seconds)

        def work(conn: Connection) -> SigningKeyRecord:
            conn.execute(_ACTIVE_KEY_UPDATE, {"until": until})
            self._private_keys[_store_signing_key(conn, key, now, self._key_password)] = key
            return SigningKeyRecord(kid=key.thumbprint, key=key, created_at=now)

        return await self._write(work)

    async def retire_signing_key(self, kid: str) -> SigningKeyRecord:
        """Withdraw a rotated-out signing key from JWKS before its window ends.

        Raises:
            NotFoundError: unknown kid.
            ConfigurationError: it is the active signing key (rotate first).
            UnavailableError: the database cannot be reached.
        """

        def work(conn: Connection) -> SigningKeyRecord:
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).first()
            if row is None:
                raise NotFoundError(f"no signing key {kid!r}")
            if row.publish_until is None and not row.retired:
                raise ConfigurationError("cannot retire the active signing key: rotate first")
            conn.execute(
                sa.update(signing_keys).where(signing_keys.c.kid == kid).values(retired=True)
            )
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).one()
            return self._signing_record(row)

        return await self._write(work)

    async def encrypt_signing_keys(
        self, *, previous_password: bytes | None = None
    ) -> tuple[int, int]:
        """Store every signing key encrypted with this registry's key-encryption key.

        Keys stored in the clear, and with ``previous_password`` keys encrypted under that
        earlier key, are rewritten; keys already under the current key are left as they are.
        One transaction: every key is rewritten, or none is. Returns (rewritten, total).

        Raises:
            ConfigurationError: no key-encryption key is set, or a stored key opens with
                neither the current nor the previous key.
            UnavailableError: the database cannot be reached.
        """
        current = self._key_password
        if not current:
            raise ConfigurationError(
                "set TAAP_KEY_ENCRYPTION_KEY to the key the signing keys should be stored under"
            )

        def work(conn: Connection) -> tuple[int, int]:
            rows = conn.execute(sa.select(signing_keys.c.kid, signing_keys.c.pem)).all()
            rewritten = 0
            for kid, pem in rows:
                key = _key_to_rewrap(kid, pem, current, previous_password)
                if key is None:
                    continue  # already under the current key
                conn.execute(
                    sa.update(signing_keys)
                    .where(signing_keys.c.kid == kid)
                    .values(pem=key.to_pem(current).decode("ascii"))
                )
                rewritten += 1
            return rewritten, len(rows)

        done = await self._write(work)
        self._private_keys.clear()  # cached by stored PEM, which just changed
        return done

    def _signing_record(self, row: Row[Any]) -> SigningKeyRecord:
        key = self._private_keys.get(row.pem)
        if key is None:
            try:
                key = load_private_key(row.pem, self._key_password)
            except KeyFormatError as exc:
                raise ConfigurationError(
                    f"signing key {row.kid} cannot be loaded: {exc.description} (is "
                    "TAAP_KEY_ENCRYPTION_KEY right? Keys stored before it was set are encrypted "
                    "with `taap keys encrypt`)"
                ) from exc
            self._private_keys[row.pem] = key
        return SigningKeyRecord(
            kid=row.kid,
            key=key,
            created_at=utc(row.created_at),
            publish_until=utc(row.publish_until) if row.publish_until is not None else None,
            retired=bool(row.retired),
        )


def ensure_signing_key(conn: Connection, now: datetime, password: bytes | None) -> None:
    """Create a signing key when none is active (a new registry's first start)."""
    active = conn.execute(
        sa.select(signing_keys.c.kid).where(
            signing_keys.c.retired.is_(False), signing_keys.c.publish_until.is_(None)
        )
    ).first()
    if active is None:
        _store_signing_key(conn, generate_private_key(2048), now, password)


def _key_to_rewrap(kid: str, pem: str, current: bytes, previous: bytes | None) -> PrivateKey | None:
    """The stored key, when it must be written again under ``current``; else ``None``."""
    if "ENCRYPTED" not in pem:
        return load_private_key(pem)
    for password, rewrap in ((current, False), (previous, True)):
        if password:
            try:
                key = load_private_key(pem, password)
            except KeyFormatError:
                continue
            return key if rewrap else None
    raise ConfigurationError(
        f"signing key {kid} is encrypted under another key-encryption key: name the variable "
        "that holds it with --previous-key-env"
    )


def _store_signing_key(
    conn: Connection, key: PrivateKey, now: datetime, password: bytes | None
) -> str:
    pem = key.to_pem(password).decode("ascii")
    conn.execute(
        signing_keys.insert().values(
            kid=key.thumbprint, pem=pem, created_at=now, publish_until=None, retired=False
        )
    )
    return pem
