"""The company page (its owner invites members) and the operator console."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from taap.errors import NotFoundError
from taap.portal.mail import check_address
from taap.portal.web import Ctx, NotFound

__all__ = ["admin_action", "company", "console", "invitation"]

_INVITE_DAYS = 7


async def company(ctx: Ctx) -> Response:
    account = ctx.require_user()
    store = ctx.portal.store
    if account.company_id is None:
        raise NotFound
    found = await store.company(account.company_id)
    if found is None:
        raise NotFound
    owner = account.role == "owner"
    if ctx.request.method == "POST":
        if not owner:
            raise NotFound
        try:
            email = check_address(ctx.field("email"))
        except ValueError as exc:
            return ctx.redirect("/portal/company", str(exc), "error")
        group = ctx.field("group").strip()[:100] or None
        token = secrets.token_urlsafe(32)
        digest = _invite_digest(token)
        expires = store.now() + timedelta(days=_INVITE_DAYS)
        await store.invite(found.id, email, group, digest, expires)
        body = (
            f"{account.email} invites you to the company {found.name} on the TAAP developer "
            f"portal. Within {_INVITE_DAYS} days, sign in with this address and accept at "
            f"{ctx.portal.base_url}/portal/invitations/{token}"
        )
        await ctx.portal.signin.mailer.send(email, f"Join {found.name} on TAAP", body)
        await store.audit(account.email, "company.invite", found.id, email=email, group=group)
        return ctx.redirect("/portal/company", f"Invitation sent to {email}.")
    return ctx.render(
        "company.html",
        nav="company",
        company=found,
        owner=owner,
        members=await store.members(found.id),
        invitations=await store.invitations(found.id) if owner else [],
        apps=await store.apps(company_id=found.id) if owner else [],
    )


def _invite_digest(token: str) -> str:
    return hmac.new(b"taap.portal.invite", token.encode(), hashlib.sha256).hexdigest()


async def invitation(ctx: Ctx) -> Response:
    """An invitation's link: the invited address, signed in, accepts it and joins the company.

    A first sign-in joins at once (see the code page), so the link mostly serves an account
    that existed before it was invited. Anyone else, or a dead token, gets the 404 page.
    """
    account = ctx.require_user()
    store = ctx.portal.store
    digest = _invite_digest(ctx.request.path_params["token"])
    found = await store.invitation(digest)
    if found is None and account.company_id is not None:
        return ctx.redirect("/portal/company", "This invitation is used or has expired.", "info")
    if found is None or found.email != account.email:
        raise NotFound
    joining = await store.company(found.company_id)
    if joining is None:
        raise NotFound
    if account.company_id is not None:
        return ctx.redirect(
            "/portal/", "This account already belongs to a company; it can join one.", "error"
        )
    if ctx.request.method == "GET":
        return ctx.render(
            "invitation.html",
            company=joining,
            group=found.group_name,
            action=ctx.request.url.path,
        )
    if await store.accept_invitation(account, digest) is None:
        raise NotFound
    await store.audit(account.email, "company.join", account.id)
    return ctx.redirect("/portal/company", f"You joined {joining.name}.")


def _operator(ctx: Ctx) -> object:
    account = ctx.require_user()
    if not account.is_admin:
        raise NotFound
    return account


async def console(ctx: Ctx) -> Response:
    _operator(ctx)
    store = ctx.portal.store
    apps = await store.apps()
    products = await ctx.portal.apps.products()
    revocations = await ctx.portal.apps.recent_revocations()
    return ctx.render(
        "admin.html",
        nav="admin",
        accounts=await store.list_accounts(),
        companies=await store.list_companies(),
        apps=apps,
        products=products,
        # Pending rows name the app and product, so each decision button says what it decides.
        app_names={app.id: app.name for app in apps},
        product_names={product.id: product.name for product in products},
        approval=await store.approval_products(),
        pending=await store.pending(),
        events=await store.audit_events(),
        revocations=revocations,
        ends={r.seq: _utc(r.expires_at) for r in revocations},
    )


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def admin_action(ctx: Ctx) -> Response:
    actor = ctx.require_user()
    _operator(ctx)
    store = ctx.portal.store
    action = ctx.request.path_params["action"]
    try:
        if action in ("approve", "reject"):
            await ctx.portal.apps.approve(
                actor, ctx.field("app_id"), ctx.field("product_id"), action == "approve"
            )
            return ctx.redirect("/portal/admin", f"Subscription {action}d.")
        if action == "approval":
            product, required = ctx.field("product_id"), ctx.field("required") == "1"
            await store.set_approval(product, required)
            await store.audit(actor.email, "product.approval", product, required=required)
            return ctx.redirect("/portal/admin", "Approval setting saved.")
        if action == "disable-app":
            app = await store.app(ctx.field("app_id"))
            if app is None:
                raise NotFound
            await ctx.portal.apps.set_enabled(actor, app, False)
            return ctx.redirect("/portal/admin", "App disabled: its tokens no longer work.")
        if action == "disable-account":
            target = await store.account(ctx.field("account_id"))
            if target is None:
                raise NotFound
            await ctx.portal.apps.disable_account(actor, target)
            return ctx.redirect("/portal/admin", "Developer disabled.")
    except NotFoundError:
        raise NotFound from None
    raise NotFound
