"""Sign-in by code, the first-sign-in choice of account type, sign-out."""

from __future__ import annotations

from starlette.responses import Response

from taap.portal.auth import Throttled
from taap.portal.web import Ctx

__all__ = ["code_form", "code_submit", "sign_in_form", "sign_in_submit", "sign_out", "welcome"]


async def sign_in_form(ctx: Ctx) -> Response:
    return ctx.render("sign_in.html", errors=[], email="")


async def sign_in_submit(ctx: Ctx) -> Response:
    email = ctx.field("email")
    try:
        normalised = await ctx.portal.signin.send_code(email, ctx.client_ip())
    except ValueError as exc:
        return ctx.render("sign_in.html", status=400, errors=[("email", str(exc))], email=email)
    except Throttled:
        return ctx.render(
            "sign_in.html",
            status=429,
            errors=[("email", "Too many codes asked for. Wait a minute and try again.")],
            email=email,
        )
    except OSError:
        return ctx.render(
            "sign_in.html",
            status=503,
            errors=[("email", "The code could not be sent. Try again in a moment.")],
            email=email,
        )
    ctx.session.data["email"] = normalised
    ctx.session.dirty = True
    # The same words for every address: whether it has an account is not said.
    return ctx.redirect(
        "/portal/sign-in/code", f"If {normalised} can receive mail, a code is on its way.", "info"
    )


async def code_form(ctx: Ctx) -> Response:
    if "email" not in ctx.session.data:
        return ctx.redirect("/portal/sign-in")
    return ctx.render("sign_in_code.html", errors=[], email=ctx.session.data["email"])


async def code_submit(ctx: Ctx) -> Response:
    email = ctx.session.data.get("email")
    if not isinstance(email, str):
        return ctx.redirect("/portal/sign-in")
    outcome: str
    try:
        outcome = await ctx.portal.signin.check_code(email, ctx.field("code"), ctx.client_ip())
    except Throttled:
        outcome = "throttled"
    if outcome != "ok":
        message = {
            "wrong": "That code is not right. Check the mail and try again.",
            "dead": "That code no longer works. Ask for a new one.",
            "throttled": "Too many attempts. Wait a minute and try again.",
        }[outcome]
        status = 429 if outcome == "throttled" else 400
        return ctx.render(
            "sign_in_code.html", status=status, errors=[("code", message)], email=email
        )
    store = ctx.portal.store
    account, _ = await store.ensure_account(email)
    if account.status != "active":
        return ctx.render(
            "sign_in_code.html",
            status=403,
            errors=[("code", "This account is disabled.")],
            email=email,
        )
    if account.kind is None and await store.accept_invitation(account) is not None:
        await store.audit(email, "company.join", account.id)
    if email in ctx.portal.admin_emails and not account.is_admin:
        await store.add_admin(email)
    account = await store.account(account.id) or account
    # A new session id at sign-in: a visitor's id planted before cannot become a signed-in one.
    await ctx.portal.signin.end(ctx.session)
    ctx.session = await ctx.portal.signin.start(account)
    await store.audit(email, "session.sign_in", account.id)
    target = "/portal/welcome" if account.kind is None else "/portal/"
    return ctx.redirect(target, "Signed in.")


async def welcome(ctx: Ctx) -> Response:
    account = ctx.require_user()
    if account.kind is not None:
        return ctx.redirect("/portal/")
    if ctx.request.method == "GET":
        return ctx.render("welcome.html", errors=[], kind="individual", company_name="")
    kind = ctx.field("kind")
    company = ctx.field("company_name").strip()
    errors = []
    if kind not in ("individual", "enterprise"):
        errors.append(("kind", "Choose Individual or Enterprise."))
    elif kind == "enterprise" and not 1 <= len(company) <= 200:
        errors.append(("company_name", "Enter the company name (at most 200 characters)."))
    if errors:
        return ctx.render(
            "welcome.html", status=400, errors=errors, kind=kind, company_name=company
        )
    await ctx.portal.store.choose_kind(account.id, kind, company or None)
    await ctx.portal.store.audit(account.email, "account.kind", account.id, kind=kind)
    return ctx.redirect("/portal/", "Your account is ready.")


async def sign_out(ctx: Ctx) -> Response:
    account = ctx.session.account
    everywhere = ctx.field("everywhere") == "1"
    await ctx.portal.signin.end(ctx.session, everywhere=everywhere)
    if account is not None:
        await ctx.portal.store.audit(
            account.email, "session.sign_out", account.id, everywhere=everywhere
        )
    ctx.session = await ctx.portal.signin.start(None)
    return ctx.redirect("/portal/sign-in", "Signed out.", "info")
