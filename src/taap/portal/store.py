"""The portal's storage: accounts, sign-in codes, sessions, operators and audit events
(``taap.portal.tables``) through the registry's statement runner.

Statements are plain functions of a synchronous connection, as in the registry; the runner
decides where they run (inline for SQLite, a worker thread for PostgreSQL). ``clock`` returns
POSIX seconds. Apps, companies and approvals are in :mod:`taap.portal.store_apps`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.portal.tables import accounts, admins, audit_events, companies, sessions, sign_in_codes
from taap.server.registry.sql import Runner

__all__ = [
    "Account",
    "AuditEvent",
    "CodeCheck",
    "PortalStoreBase",
    "SessionRow",
    "new_id",
    "to_dt",
    "utc",
]

T = TypeVar("T")
CodeCheck = Literal["ok", "wrong", "dead"]


def new_id(prefix: str) -> str:
    """A random id that says what it names (``acc_``, ``app_``, ``co_``)."""
    return prefix + secrets.token_hex(12)


def to_dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite hands back naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    kind: str | None
    company_id: str | None
    role: str | None
    status: str
    created_at: datetime
    company_name: str | None = None
    is_admin: bool = False


@dataclass(frozen=True, slots=True, repr=False)
class SessionRow:
    """A stored session; ``data`` is its JSON state (flash lines, sealed one-time secret)."""

    id_digest: str
    account_id: str | None
    data: dict[str, Any]
    expires_at: datetime

    def __repr__(self) -> str:
        return f"SessionRow(account_id={self.account_id!r})"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def _account(row: Any, company_name: str | None = None, is_admin: bool = False) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        kind=row.kind,
        company_id=row.company_id,
        role=row.role,
        status=row.status,
        created_at=utc(row.created_at),
        company_name=company_name,
        is_admin=is_admin,
    )


class PortalStoreBase:
    """Accounts, codes, sessions, operators and audit events."""

    def __init__(self, runner: Runner, *, clock: Callable[[], float]) -> None:
        self._runner = runner
        self._clock = clock

    def now(self) -> datetime:
        return to_dt(self._clock())

    async def close(self) -> None:
        await self._runner.dispose()

    async def _read(self, work: Callable[[Connection], T]) -> T:
        return await self._runner.read(work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        return await self._runner.write(work)

    # -- accounts -------------------------------------------------------------------------
    async def account(self, account_id: str) -> Account | None:
        def work(conn: Connection) -> Account | None:
            row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()
            return None if row is None else self._enriched(conn, row)

        return await self._read(work)

    async def account_by_email(self, email: str) -> Account | None:
        def work(conn: Connection) -> Account | None:
            row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).first()
            return None if row is None else self._enriched(conn, row)

        return await self._read(work)

    @staticmethod
    def _enriched(conn: Connection, row: Any) -> Account:
        name = None
        if row.company_id is not None:
            name = conn.execute(
                sa.select(companies.c.name).where(companies.c.id == row.company_id)
            ).scalar()
        admin = conn.execute(sa.select(admins.c.email).where(admins.c.email == row.email)).first()
        return _account(row, name, admin is not None)

    async def ensure_account(self, email: str) -> tuple[Account, bool]:
        """The account of ``email``, created on its first sign-in; (account, created)."""
        now = self.now()

        def work(conn: Connection) -> tuple[Account, bool]:
            row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).first()
            if row is not None:
                return self._enriched(conn, row), False
            values = {"id": new_id("acc_"), "email": email, "status": "active", "created_at": now}
            conn.execute(accounts.insert().values(**values))
            row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).one()
            return self._enriched(conn, row), True

        return await self._write(work)

    async def list_accounts(self) -> Sequence[Account]:
        def work(conn: Connection) -> list[Account]:
            rows = conn.execute(sa.select(accounts).order_by(accounts.c.created_at)).all()
            return [self._enriched(conn, r) for r in rows]

        return await self._read(work)

    async def set_account_status(self, account_id: str, status: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                sa.update(accounts).where(accounts.c.id == account_id).values(status=status)
            )
        )

    # -- sign-in codes --------------------------------------------------------------------
    async def put_code(self, email: str, digest: str, expires_at: datetime) -> None:
        """Store a new code for ``email``; earlier ones stop working."""
        now = self.now()

        def work(conn: Connection) -> None:
            conn.execute(sa.delete(sign_in_codes).where(sign_in_codes.c.email == email))
            conn.execute(
                sign_in_codes.insert().values(
                    email=email,
                    code_digest=digest,
                    attempts=0,
                    expires_at=expires_at,
                    created_at=now,
                )
            )

        await self._write(work)

    async def check_code(self, email: str, digest: str, *, max_attempts: int) -> CodeCheck:
        """Count one attempt against the live code of ``email``: ``ok`` (the code is spent),
        ``wrong``, or ``dead`` (expired, used up, or none)."""
        now = self.now()
        c = sign_in_codes.c

        def work(conn: Connection) -> CodeCheck:
            row = conn.execute(
                sa.select(sign_in_codes).where(c.email == email).order_by(c.id.desc())
            ).first()
            if row is None or utc(row.expires_at) <= now or row.attempts >= max_attempts:
                return "dead"
            if secrets.compare_digest(row.code_digest, digest):
                conn.execute(sa.delete(sign_in_codes).where(c.email == email))
                return "ok"
            conn.execute(
                sa.update(sign_in_codes).where(c.id == row.id).values(attempts=c.attempts + 1)
            )
            return "dead" if row.attempts + 1 >= max_attempts else "wrong"

        return await self._write(work)

    # -- sessions -------------------------------------------------------------------------
    async def create_session(
        self, digest: str, account_id: str | None, data: dict[str, Any], expires_at: datetime
    ) -> None:
        now = self.now()
        await self._write(
            lambda conn: conn.execute(
                sessions.insert().values(
                    id_digest=digest,
                    account_id=account_id,
                    data=json.dumps(data),
                    created_at=now,
                    last_seen=now,
                    expires_at=expires_at,
                    revoked=False,
                )
            )
        )

    async def session(self, digest: str) -> SessionRow | None:
        now = self.now()
        s = sessions.c

        def work(conn: Connection) -> SessionRow | None:
            row = conn.execute(sa.select(sessions).where(s.id_digest == digest)).first()
            if row is None or row.revoked or utc(row.expires_at) <= now:
                return None
            return SessionRow(row.id_digest, row.account_id, json.loads(row.data), row.expires_at)

        return await self._read(work)

    async def save_session(self, digest: str, data: dict[str, Any]) -> None:
        now = self.now()
        await self._write(
            lambda conn: conn.execute(
                sa.update(sessions)
                .where(sessions.c.id_digest == digest)
                .values(data=json.dumps(data), last_seen=now)
            )
        )

    async def revoke_session(self, digest: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                sa.update(sessions).where(sessions.c.id_digest == digest).values(revoked=True)
            )
        )

    async def revoke_sessions(self, account_id: str) -> None:
        """Sign out everywhere: every session of the account."""
        await self._write(
            lambda conn: conn.execute(
                sa.update(sessions).where(sessions.c.account_id == account_id).values(revoked=True)
            )
        )

    # -- operators and audit ---------------------------------------------------------------
    async def add_admin(self, email: str) -> bool:
        now = self.now()

        def work(conn: Connection) -> bool:
            if conn.execute(sa.select(admins.c.email).where(admins.c.email == email)).first():
                return False
            conn.execute(admins.insert().values(email=email, created_at=now))
            return True

        return await self._write(work)

    async def remove_admin(self, email: str) -> bool:
        done = await self._write(
            lambda conn: conn.execute(sa.delete(admins).where(admins.c.email == email)).rowcount
        )
        return bool(done)

    async def list_admins(self) -> list[str]:
        return await self._read(
            lambda conn: list(
                conn.execute(sa.select(admins.c.email).order_by(admins.c.email)).scalars()
            )
        )

    async def audit(self, actor: str, action: str, subject: str, **details: Any) -> None:
        """Record a change. ``details`` must never hold a secret, code or token."""
        now = self.now()
        await self._write(
            lambda conn: conn.execute(
                audit_events.insert().values(
                    at=now,
                    actor=actor,
                    action=action,
                    subject=subject[:200],
                    details=json.dumps(details, sort_keys=True),
                )
            )
        )

    async def audit_events(self, limit: int = 200) -> list[AuditEvent]:
        a = audit_events.c

        def work(conn: Connection) -> list[AuditEvent]:
            rows = conn.execute(sa.select(audit_events).order_by(a.id.desc()).limit(limit)).all()
            return [
                AuditEvent(utc(r.at), r.actor, r.action, r.subject, json.loads(r.details))
                for r in rows
            ]

        return await self._read(work)
