"""Apps (registry clients) as developers and operators change them (sans-HTTP).

Every app is a registry client created through the admin port; the portal keeps which account
(and company) owns it. Who may see an app: its owner, and for a company's app the company's
owner; anyone else gets ``NotFoundError`` (the web layer answers 404, hiding that it exists).
Every change writes an audit event; secrets never go into one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from taap.core.keys import PublicKey, load_public_key
from taap.core.revocation import RevocationEntry
from taap.errors import KeyFormatError, NotFoundError
from taap.portal.store import Account
from taap.portal.store_apps import AppRow, PortalStore
from taap.server.registry.port import ApiProduct, ClientRecord, Registry

__all__ = ["Apps", "parse_public_key"]

_MAX_KEY_BYTES = 16 * 1024


def parse_public_key(text: str) -> PublicKey:
    """A public key from PEM or JWK text.

    Raises:
        ValueError: not a supported public key.
    """
    data = text.strip()
    if not data or len(data) > _MAX_KEY_BYTES:
        raise ValueError("upload a public key as PEM or JWK")
    try:
        # load_public_key reads a JWK from its JSON text itself.
        return load_public_key(data)
    except KeyFormatError as exc:
        # Its messages say what is wrong and never quote the key.
        raise ValueError(str(exc)) from None
    except Exception as exc:
        raise ValueError("that is not an RSA public key in PEM or JWK form") from exc


class Apps:
    def __init__(self, store: PortalStore, registry: Registry) -> None:
        self._store = store
        self._registry = registry

    async def products(self) -> Sequence[ApiProduct]:
        return await self._registry.list_products()

    async def visible(self, account: Account, app_id: str) -> AppRow:
        """The app, if ``account`` may see it.

        Raises:
            NotFoundError: no such app, or not this account's.
        """
        app = await self._store.app(app_id)
        if app is not None and (
            app.account_id == account.id
            or account.is_admin
            or (account.role == "owner" and app.company_id == account.company_id is not None)
        ):
            return app
        raise NotFoundError("no such app")

    async def listed(self, account: Account) -> Sequence[AppRow]:
        mine = list(await self._store.apps(account_id=account.id))
        if account.role == "owner" and account.company_id:
            seen = {a.id for a in mine}
            mine += [
                a for a in await self._store.apps(company_id=account.company_id) if a.id not in seen
            ]
        return mine

    async def client(self, app: AppRow) -> ClientRecord | None:
        return await self._registry.get_client(app.client_id)

    async def create(
        self, account: Account, name: str, product_ids: Sequence[str]
    ) -> tuple[AppRow, str, list[str]]:
        """A new app; returns it, its one-time secret, and the products left pending."""
        known = {p.id for p in await self.products()}
        wanted = [p for p in dict.fromkeys(product_ids) if p in known]
        approval = await self._store.approval_products()
        now = [p for p in wanted if p not in approval]
        later = [p for p in wanted if p in approval]
        record, secret = await self._registry.create_client(name=name, keys=[], apis=now)
        app = await self._store.add_app(account, record.client_id, name)
        for product in later:
            await self._store.add_pending(app.id, product)
        await self._store.audit(
            account.email,
            "app.create",
            app.id,
            client_id=record.client_id,
            products=now,
            pending=later,
        )
        return app, secret, later

    async def rotate(self, actor: Account, app: AppRow, grace: float) -> str:
        secret = await self._registry.rotate_secret(app.client_id, grace=grace)
        await self._store.audit(actor.email, "app.rotate_secret", app.id, grace=grace)
        return secret

    async def set_enabled(self, actor: Account, app: AppRow, enabled: bool) -> None:
        await self._registry.set_status(app.client_id, "active" if enabled else "disabled")
        await self._store.audit(actor.email, "app.enable" if enabled else "app.disable", app.id)

    async def delete(self, actor: Account, app: AppRow) -> None:
        # Already gone from the registry (an operator's CLI): forget it here too.
        with contextlib.suppress(NotFoundError):
            await self._registry.remove_client(app.client_id)
        await self._store.delete_app(app.id)
        await self._store.audit(actor.email, "app.delete", app.id, client_id=app.client_id)

    async def add_key(self, actor: Account, app: AppRow, key: PublicKey) -> None:
        await self._registry.add_key(app.client_id, key)
        await self._store.audit(actor.email, "key.add", app.id, thumbprint=key.thumbprint)

    async def remove_key(self, actor: Account, app: AppRow, thumbprint: str) -> None:
        """Raises ``NotFoundError`` (no such key) or ``ConfigurationError`` (the last key)."""
        await self._registry.remove_key(app.client_id, thumbprint)
        await self._store.audit(actor.email, "key.remove", app.id, thumbprint=thumbprint)

    # -- operators ------------------------------------------------------------------------
    async def approve(self, actor: Account, app_id: str, product_id: str, approved: bool) -> None:
        app = await self._store.app(app_id)
        if app is None or not await self._store.decide(
            app_id, product_id, "approved" if approved else "rejected"
        ):
            raise NotFoundError("no such pending subscription")
        if approved:
            await self._registry.subscribe(app.client_id, product_id)
        action = "subscription.approve" if approved else "subscription.reject"
        await self._store.audit(actor.email, action, app_id, product=product_id)

    async def disable_account(self, actor: Account, target: Account) -> None:
        """Disable a developer: sessions end, and every app of theirs is disabled (which
        revokes its live tokens)."""
        await self._store.set_account_status(target.id, "disabled")
        await self._store.revoke_sessions(target.id)
        for app in await self._store.apps(account_id=target.id):
            await self._registry.set_status(app.client_id, "disabled")
        await self._store.audit(actor.email, "account.disable", target.email)

    async def recent_revocations(self, limit: int = 50) -> list[RevocationEntry]:
        """The registry's live revocation log, newest first: what changed tokens' fate, by the
        portal, the CLI or the revocation endpoint alike (rows leave the log once every token
        they concern has expired, so it stays short)."""
        entries = await self._registry.revocations_after(0)
        return list(reversed(entries[-limit:]))
