"""The portal's storage of apps, companies, groups, invitations and approvals; with
:class:`~taap.portal.store.PortalStoreBase` it makes :class:`PortalStore`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from taap.portal.store import Account, PortalStoreBase, new_id, utc
from taap.portal.tables import (
    accounts,
    approval_products,
    apps,
    companies,
    group_members,
    groups,
    invitations,
    pending_subscriptions,
)

__all__ = ["AppRow", "Company", "Invitation", "Member", "Pending", "PortalStore"]


@dataclass(frozen=True, slots=True)
class AppRow:
    id: str
    account_id: str
    company_id: str | None
    client_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Company:
    id: str
    name: str
    owner_id: str


@dataclass(frozen=True, slots=True)
class Member:
    account_id: str
    email: str
    role: str | None
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Invitation:
    company_id: str
    email: str
    group_name: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    app_id: str
    product_id: str
    status: str


def _app(row: Any) -> AppRow:
    return AppRow(
        row.id, row.account_id, row.company_id, row.client_id, row.name, utc(row.created_at)
    )


class PortalStore(PortalStoreBase):
    """Everything the portal stores (accounts and sessions in the base class)."""

    # -- account type and companies -------------------------------------------------------
    async def choose_kind(self, account_id: str, kind: str, company_name: str | None) -> None:
        """Individual, or Enterprise with a new company the account owns."""
        now = self.now()

        def work(conn: Connection) -> None:
            values: dict[str, Any] = {"kind": kind, "role": None, "company_id": None}
            if kind == "enterprise":
                company_id = new_id("co_")
                conn.execute(
                    companies.insert().values(
                        id=company_id, name=company_name, owner_id=account_id, created_at=now
                    )
                )
                values.update(company_id=company_id, role="owner")
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(**values))

        await self._write(work)

    async def company(self, company_id: str) -> Company | None:
        row = await self._read(
            lambda conn: conn.execute(
                sa.select(companies).where(companies.c.id == company_id)
            ).first()
        )
        return None if row is None else Company(row.id, row.name, row.owner_id)

    async def list_companies(self) -> Sequence[Company]:
        rows = await self._read(
            lambda conn: conn.execute(sa.select(companies).order_by(companies.c.name)).all()
        )
        return [Company(r.id, r.name, r.owner_id) for r in rows]

    async def members(self, company_id: str) -> Sequence[Member]:
        def work(conn: Connection) -> list[Member]:
            rows = conn.execute(
                sa.select(accounts).where(accounts.c.company_id == company_id)
            ).all()
            found = []
            for row in rows:
                names = conn.execute(
                    sa.select(groups.c.name)
                    .join(group_members, group_members.c.group_id == groups.c.id)
                    .where(group_members.c.account_id == row.id)
                    .order_by(groups.c.name)
                ).scalars()
                found.append(Member(row.id, row.email, row.role, tuple(names)))
            return found

        return await self._read(work)

    async def invite(
        self, company_id: str, email: str, group_name: str | None, digest: str, expires: datetime
    ) -> None:
        now = self.now()
        await self._write(
            lambda conn: conn.execute(
                invitations.insert().values(
                    company_id=company_id,
                    email=email,
                    group_name=group_name,
                    token_digest=digest,
                    expires_at=expires,
                    created_at=now,
                )
            )
        )

    async def invitations(self, company_id: str) -> Sequence[Invitation]:
        now = self.now()
        i = invitations.c
        rows = await self._read(
            lambda conn: conn.execute(
                sa.select(invitations).where(i.company_id == company_id, i.expires_at > now)
            ).all()
        )
        return [Invitation(r.company_id, r.email, r.group_name, utc(r.expires_at)) for r in rows]

    async def invitation(self, digest: str) -> Invitation | None:
        """The live invitation whose token has this digest."""
        now = self.now()
        i = invitations.c
        row = await self._read(
            lambda conn: conn.execute(
                sa.select(invitations).where(i.token_digest == digest, i.expires_at > now)
            ).first()
        )
        if row is None:
            return None
        return Invitation(row.company_id, row.email, row.group_name, utc(row.expires_at))

    async def accept_invitation(
        self, account: Account, digest: str | None = None
    ) -> Company | None:
        """Join the company that invited ``account``'s e-mail (the newest live invitation, or
        the one whose token has ``digest``), as a member of the invitation's group; ``None``
        when there is none."""
        now = self.now()
        i = invitations.c
        wanted = [i.email == account.email, i.expires_at > now]
        if digest is not None:
            wanted.append(i.token_digest == digest)

        def work(conn: Connection) -> str | None:
            row = conn.execute(sa.select(invitations).where(*wanted).order_by(i.id.desc())).first()
            if row is None:
                return None
            conn.execute(
                sa.update(accounts)
                .where(accounts.c.id == account.id)
                .values(kind="enterprise", company_id=row.company_id, role="member")
            )
            if row.group_name:
                self._join_group(conn, row.company_id, row.group_name, account.id)
            conn.execute(sa.delete(invitations).where(i.email == account.email))
            return str(row.company_id)

        company_id = await self._write(work)
        return None if company_id is None else await self.company(company_id)

    @staticmethod
    def _join_group(conn: Connection, company_id: str, name: str, account_id: str) -> None:
        g = groups.c
        group_id = conn.execute(
            sa.select(g.id).where(g.company_id == company_id, g.name == name)
        ).scalar()
        if group_id is None:
            conn.execute(groups.insert().values(company_id=company_id, name=name))
            group_id = conn.execute(
                sa.select(g.id).where(g.company_id == company_id, g.name == name)
            ).scalar_one()
        conn.execute(group_members.insert().values(group_id=group_id, account_id=account_id))

    # -- apps -----------------------------------------------------------------------------
    async def add_app(self, account: Account, client_id: str, name: str) -> AppRow:
        row = AppRow(new_id("app_"), account.id, account.company_id, client_id, name, self.now())
        await self._write(
            lambda conn: conn.execute(
                apps.insert().values(
                    id=row.id,
                    account_id=row.account_id,
                    company_id=row.company_id,
                    client_id=row.client_id,
                    name=row.name,
                    created_at=row.created_at,
                )
            )
        )
        return row

    async def app(self, app_id: str) -> AppRow | None:
        row = await self._read(
            lambda conn: conn.execute(sa.select(apps).where(apps.c.id == app_id)).first()
        )
        return None if row is None else _app(row)

    async def apps(
        self, *, account_id: str | None = None, company_id: str | None = None
    ) -> Sequence[AppRow]:
        """Apps of an account, of a company, or (neither given) every app."""
        query = sa.select(apps).order_by(apps.c.created_at, apps.c.id)
        if account_id is not None:
            query = query.where(apps.c.account_id == account_id)
        if company_id is not None:
            query = query.where(apps.c.company_id == company_id)
        rows = await self._read(lambda conn: conn.execute(query).all())
        return [_app(r) for r in rows]

    async def delete_app(self, app_id: str) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                sa.delete(pending_subscriptions).where(pending_subscriptions.c.app_id == app_id)
            )
            conn.execute(sa.delete(apps).where(apps.c.id == app_id))

        await self._write(work)

    # -- approvals ------------------------------------------------------------------------
    async def approval_products(self) -> set[str]:
        rows = await self._read(
            lambda conn: conn.execute(sa.select(approval_products.c.product_id)).scalars().all()
        )
        return set(rows)

    async def set_approval(self, product_id: str, required: bool) -> None:
        now = self.now()
        p = approval_products.c

        def work(conn: Connection) -> None:
            conn.execute(sa.delete(approval_products).where(p.product_id == product_id))
            if required:
                conn.execute(
                    approval_products.insert().values(product_id=product_id, created_at=now)
                )

        await self._write(work)

    async def add_pending(self, app_id: str, product_id: str) -> None:
        now = self.now()
        await self._write(
            lambda conn: conn.execute(
                pending_subscriptions.insert().values(
                    app_id=app_id, product_id=product_id, status="pending", created_at=now
                )
            )
        )

    async def pending(self, *, app_id: str | None = None) -> Sequence[Pending]:
        p = pending_subscriptions.c
        query = sa.select(pending_subscriptions).order_by(p.created_at)
        query = query.where(p.app_id == app_id) if app_id else query.where(p.status == "pending")
        rows = await self._read(lambda conn: conn.execute(query).all())
        return [Pending(r.app_id, r.product_id, r.status) for r in rows]

    async def decide(self, app_id: str, product_id: str, status: str) -> bool:
        """Approve or reject a pending subscription; False when it is not pending."""
        p = pending_subscriptions.c
        done = await self._write(
            lambda conn: (
                conn.execute(
                    sa.update(pending_subscriptions)
                    .where(p.app_id == app_id, p.product_id == product_id, p.status == "pending")
                    .values(status=status)
                ).rowcount
            )
        )
        return bool(done)
