"""The developer's pages: dashboard, new app, the app page and its actions."""

from __future__ import annotations

import json

from starlette.datastructures import UploadFile
from starlette.responses import Response

from taap.errors import ConfigurationError, NotFoundError
from taap.portal.apps import parse_public_key
from taap.portal.store_apps import AppRow
from taap.portal.web import Ctx, NotFound
from taap.postman import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    PostmanExport,
    build_collection,
    build_environment,
)

__all__ = [
    "app_action",
    "app_page",
    "dashboard",
    "delete_app",
    "keys_add",
    "keys_remove",
    "new_app",
    "postman_file",
]

_POSTMAN_FILES = {COLLECTION_FILE: build_collection, ENVIRONMENT_FILE: build_environment}


async def dashboard(ctx: Ctx) -> Response:
    account = ctx.require_user()
    apps = await ctx.portal.apps.listed(account)
    return ctx.render("dashboard.html", nav="apps", apps=apps)


async def new_app(ctx: Ctx) -> Response:
    account = ctx.require_user()
    products = await ctx.portal.apps.products()
    if ctx.request.method == "GET":
        return ctx.render(
            "new_app.html", nav="apps", products=products, errors=[], name="", chosen=[]
        )
    assert ctx.form is not None
    name = ctx.field("name").strip()
    chosen = [p for p in ctx.form.getlist("products") if isinstance(p, str)]
    if not 1 <= len(name) <= 200 or not name.isprintable():
        errors = [("name", "Enter an app name of at most 200 characters.")]
        return ctx.render(
            "new_app.html",
            nav="apps",
            status=400,
            products=products,
            errors=errors,
            name=name,
            chosen=chosen,
        )
    app, secret, pending = await ctx.portal.apps.create(account, name, chosen)
    ctx.session.seal(f"secret:{app.id}", secret)
    note = " Some products wait for an operator's approval." if pending else ""
    return ctx.redirect(f"/portal/apps/{app.id}", "App created. Copy the client secret now." + note)


async def _app(ctx: Ctx) -> AppRow:
    account = ctx.require_user()
    try:
        return await ctx.portal.apps.visible(account, ctx.request.path_params["app_id"])
    except NotFoundError:
        raise NotFound from None


async def app_page(ctx: Ctx) -> Response:
    app = await _app(ctx)
    record = await ctx.portal.apps.client(app)
    if record is None:
        raise NotFound
    products = {p.id: p for p in await ctx.portal.apps.products()}
    pending = await ctx.portal.store.pending(app_id=app.id)
    subscribed = [products[a] for a in record.apis if a in products]
    return ctx.render(
        "app.html",
        nav="apps",
        app=app,
        client=record,
        secret=ctx.session.unseal(f"secret:{app.id}"),
        subscribed=subscribed,
        pending=[(products.get(p.product_id), p.status) for p in pending],
        base_url=ctx.portal.base_url,
    )


async def keys_add(ctx: Ctx) -> Response:
    app = await _app(ctx)
    assert ctx.form is not None
    text = ctx.field("public_key_pem")
    upload = ctx.form.get("public_key")
    if isinstance(upload, UploadFile):
        text = (await upload.read(16 * 1024 + 1)).decode("utf-8", "replace")
    url = f"/portal/apps/{app.id}"
    try:
        key = parse_public_key(text)
        await ctx.portal.apps.add_key(ctx.require_user(), app, key)
    except (ValueError, ConfigurationError) as exc:
        return ctx.redirect(url, str(exc), "error")
    return ctx.redirect(url, f"Key added ({key.thumbprint}).")


async def keys_remove(ctx: Ctx) -> Response:
    app = await _app(ctx)
    url = f"/portal/apps/{app.id}"
    try:
        await ctx.portal.apps.remove_key(ctx.require_user(), app, ctx.field("thumbprint"))
    except NotFoundError:
        raise NotFound from None
    except ConfigurationError as exc:
        return ctx.redirect(url, str(exc), "error")
    return ctx.redirect(url, "Key removed.")


async def app_action(ctx: Ctx) -> Response:
    """Rotate the secret, disable or enable."""
    app = await _app(ctx)
    account = ctx.require_user()
    action = ctx.request.path_params["action"]
    url = f"/portal/apps/{app.id}"
    if action == "rotate":
        try:
            grace = float(ctx.field("grace") or 0)
        except ValueError:
            grace = -1
        if not 0 <= grace <= 86400:
            return ctx.redirect(url, "The grace period is 0 to 86400 seconds.", "error")
        secret = await ctx.portal.apps.rotate(account, app, grace)
        ctx.session.seal(f"secret:{app.id}", secret)
        return ctx.redirect(url, "Secret rotated. Copy the new secret now.")
    if action in ("disable", "enable"):
        await ctx.portal.apps.set_enabled(account, app, action == "enable")
        return ctx.redirect(
            url,
            "App disabled: its tokens no longer work." if action == "disable" else "App enabled.",
        )
    raise NotFound


async def delete_app(ctx: Ctx) -> Response:
    app = await _app(ctx)
    if ctx.field("confirm_name") != app.name:
        return ctx.redirect(f"/portal/apps/{app.id}", "Type the app's name to delete it.", "error")
    await ctx.portal.apps.delete(ctx.require_user(), app)
    return ctx.redirect("/portal/", "App deleted.")


async def postman_file(ctx: Ctx) -> Response:
    """The app's Postman collection or environment (docs/postman.md), as an attachment. The
    environment leaves the client secret and the private key empty: the portal holds neither."""
    app = await _app(ctx)
    build = _POSTMAN_FILES.get(ctx.request.path_params["file"])
    record = await ctx.portal.apps.client(app)
    if build is None or record is None:
        raise NotFound
    token_url = f"{ctx.portal.base_url}/oauth2/v2/tokens"
    try:
        export = PostmanExport(
            token_url=token_url, client_id=record.client_id, products=record.apis
        )
    except ValueError:  # a product of the operator's own: the built-in sample calls only
        export = PostmanExport(token_url=token_url, client_id=record.client_id)
    body = json.dumps(build(export), indent=2, ensure_ascii=False).encode("utf-8")
    disposition = f'attachment; filename="{ctx.request.path_params["file"]}"'
    return Response(
        body, media_type="application/json", headers={"Content-Disposition": disposition}
    )
