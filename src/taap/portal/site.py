"""Building the portal app, and mounting it at ``/portal/`` on the token server.

:func:`portal_fallback` is the fallback factory ``taap serve --with-portal`` hands the token
server: ``/portal`` and everything under it go to the portal, any other unknown path to the
next fallback (the sample APIs) or a 404. The portal opens its own statement runner on the
registry's database on the first request (inside the worker process), and shares the token
server's registry, pepper and rate limiter (Redis when configured, so limits hold across
workers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from taap.asgi import Receive, Scope, Send
from taap.portal import pages_admin, pages_apps, pages_auth
from taap.portal.apps import Apps
from taap.portal.auth import SignIn
from taap.portal.console import try_it, usage
from taap.portal.docs.pages import docs_routes
from taap.portal.docs.reference import ApiDocuments
from taap.portal.mail import Mailer, open_mailer
from taap.portal.store_apps import PortalStore
from taap.portal.web import Handler, Portal, PortalApp, page
from taap.server.app import ASGIApp, TokenServerApp
from taap.server.registry.port import Registry
from taap.server.registry.sql import SqlRegistry, open_runner
from taap.server.runtime import resolve_pepper
from taap.server.usage.store import SqlUsage
from taap.stores.ratelimit import RateLimiter

__all__ = ["create_portal", "portal_fallback"]

_STATIC = Path(__file__).parent / "static"
_ROUTES: tuple[tuple[str, Handler, tuple[str, ...]], ...] = (
    ("/", pages_apps.dashboard, ("GET",)),
    ("/sign-in", pages_auth.sign_in_form, ("GET",)),
    ("/sign-in", pages_auth.sign_in_submit, ("POST",)),
    ("/sign-in/code", pages_auth.code_form, ("GET",)),
    ("/sign-in/code", pages_auth.code_submit, ("POST",)),
    ("/sign-out", pages_auth.sign_out, ("POST",)),
    ("/welcome", pages_auth.welcome, ("GET", "POST")),
    ("/apps/new", pages_apps.new_app, ("GET", "POST")),
    ("/apps/{app_id}", pages_apps.app_page, ("GET",)),
    ("/apps/{app_id}/keys", pages_apps.keys_add, ("POST",)),
    ("/apps/{app_id}/keys/remove", pages_apps.keys_remove, ("POST",)),
    ("/apps/{app_id}/delete", pages_apps.delete_app, ("POST",)),
    ("/apps/{app_id}/postman/{file}", pages_apps.postman_file, ("GET",)),
    ("/apps/{app_id}/try", try_it.try_page, ("GET",)),
    ("/apps/{app_id}/usage", usage.usage_page, ("GET",)),
    ("/apps/{app_id}/{action}", pages_apps.app_action, ("POST",)),
    ("/company", pages_admin.company, ("GET", "POST")),
    ("/invitations/{token}", pages_admin.invitation, ("GET", "POST")),
    ("/admin", pages_admin.console, ("GET",)),
    ("/admin/{action}", pages_admin.admin_action, ("POST",)),
)


def create_portal(
    store: PortalStore,
    registry: Registry,
    *,
    mailer: Mailer,
    limiter: RateLimiter,
    pepper: bytes,
    base_url: str,
    admin_emails: tuple[str, ...] = (),
    clock: Callable[[], float] = time.time,
    template_dirs: tuple[str, ...] = (),
    api_documents: ApiDocuments | None = None,
    usage_reader: SqlUsage | None = None,
) -> ASGIApp:
    """The portal as an ASGI app that expects paths under ``/portal``.

    ``api_documents`` feeds the API reference (default: the sample APIs' documents only);
    ``usage_reader`` feeds the apps' Usage pages.
    """
    portal_url = f"{base_url.rstrip('/')}/portal"
    signin = SignIn(store, mailer, limiter, pepper=pepper, clock=clock, portal_url=portal_url)
    portal = Portal(
        store=store,
        signin=signin,
        apps=Apps(store, registry),
        base_url=base_url.rstrip("/"),
        secure_cookies=base_url.startswith("https://"),
        admin_emails=tuple(e.lower() for e in admin_emails),
        template_dirs=template_dirs,
        usage=usage_reader,
    )
    routes: list[Route | Mount] = [
        Route(path, page(portal, handler), methods=list(methods))
        for path, handler, methods in (
            *_ROUTES,
            *docs_routes(api_documents or ApiDocuments(), clock),
        )
    ]
    if _STATIC.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=_STATIC), name="static"))
    inner = Starlette(routes=[Mount("/portal", routes=routes)])
    return PortalApp(inner)


def portal_fallback(
    next_fallback: Callable[[TokenServerApp], ASGIApp] | None = None,
) -> Callable[[TokenServerApp], ASGIApp]:
    """A fallback factory serving ``/portal`` (then ``next_fallback``'s app, or 404)."""
    return _PortalFallback(next_fallback)


class _PortalFallback:
    # A class, not a closure: with several workers uvicorn pickles the app factory (and this
    # fallback with it) into each worker process.
    def __init__(self, next_fallback: Callable[[TokenServerApp], ASGIApp] | None) -> None:
        self.next_fallback = next_fallback

    def __call__(self, app: TokenServerApp) -> ASGIApp:
        settings = app.settings
        rest = self.next_fallback(app) if self.next_fallback is not None else None
        built: list[ASGIApp] = []
        lock = asyncio.Lock()

        async def portal() -> ASGIApp:
            async with lock:
                if not built:
                    # The registry's runner when it has one: a second engine on a SQLite
                    # file in this process would drop the process's locks on it (see
                    # SqlRegistry.runner).
                    registry = app.registry
                    runner = (
                        registry.runner
                        if isinstance(registry, SqlRegistry)
                        else open_runner(settings.database_url)
                    )
                    store = PortalStore(runner, clock=time.time)
                    built.append(
                        create_portal(
                            store,
                            # build_app always opens a full registry (both ports).
                            cast(Registry, app.registry),
                            mailer=open_mailer(
                                settings.smtp_url.get_secret_value(), settings.mail_from
                            ),
                            limiter=app.limiter,
                            pepper=resolve_pepper(settings),
                            base_url=settings.base_url,
                            admin_emails=settings.portal_admin_emails(),
                            api_documents=ApiDocuments(
                                settings.portal_openapi_sources(),
                                samples=settings.with_sample_apis,
                            ),
                            usage_reader=SqlUsage(runner),
                        )
                    )
            return built[0]

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if path == "/portal" or path.startswith("/portal/"):
                await (await portal())(scope, receive, send)
            elif rest is not None:
                await rest(scope, receive, send)
            else:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                )
                await send({"type": "http.response.body", "body": b"not found"})

        return dispatch
