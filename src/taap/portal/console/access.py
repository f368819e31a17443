"""Who may open an app's console pages: the portal's own rule (:meth:`Apps.visible`): the
app's owner, the owner of its company, an operator; anyone else gets the 404 of an app that
does not exist."""

from __future__ import annotations

from taap.errors import NotFoundError
from taap.portal.store_apps import AppRow
from taap.portal.web import Ctx, NotFound
from taap.server.registry.port import ClientRecord

__all__ = ["visible_app"]


async def visible_app(ctx: Ctx) -> tuple[AppRow, ClientRecord]:
    """The app of the path and its registry client, if the signed-in account may see it.

    Raises:
        NotFound: no such app, not the account's, or its client is gone from the registry.
    """
    account = ctx.require_user()
    try:
        app = await ctx.portal.apps.visible(account, ctx.request.path_params["app_id"])
    except NotFoundError:
        raise NotFound from None
    record = await ctx.portal.apps.client(app)
    if record is None:
        raise NotFound
    return app, record
