"""The portal's HTTP edge: security headers, body cap, sessions, CSRF, rendering.

:class:`PortalApp` wraps the Starlette router: every response gets the strict headers below,
request bodies are capped, and each handler (decorated with :func:`page`) receives a
:class:`Ctx` with the session loaded (a new anonymous one when the visitor has none) and, for
a POST, the form already checked against the session's CSRF token (403 otherwise, before the
handler runs). Pages are Jinja2 templates with autoescaping on.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from taap.asgi import Receive, Scope, Send
from taap.portal.apps import Apps
from taap.portal.auth import Session, SignIn
from taap.portal.store_apps import PortalStore
from taap.server.usage.store import SqlUsage

__all__ = ["COOKIE", "Ctx", "NotFound", "Portal", "PortalApp", "page"]

COOKIE = "taap_portal"
MAX_BODY = 64 * 1024
log = logging.getLogger("taap.portal")

SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class NotFound(Exception):
    """Answer 404: the thing does not exist, or is not the caller's (the same answer)."""


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass
class Portal:
    """Everything a handler needs."""

    store: PortalStore
    signin: SignIn
    apps: Apps
    base_url: str
    secure_cookies: bool
    admin_emails: tuple[str, ...] = ()
    templates: Environment = field(init=False)
    template_dirs: tuple[str, ...] = ()
    #: the usage counters; None: the Usage page says counting is not available
    usage: SqlUsage | None = None

    def __post_init__(self) -> None:
        loaders: list[BaseLoader] = [PackageLoader("taap.portal", "templates")]
        loaders += [FileSystemLoader(d) for d in self.template_dirs]
        self.templates = Environment(loader=ChoiceLoader(loaders), autoescape=True)


@dataclass
class Ctx:
    portal: Portal
    request: Request
    session: Session
    form: FormData | None = None
    request_id: str = ""

    @property
    def user(self) -> Any:
        return self.session.account

    def require_user(self) -> Any:
        account = self.session.account
        if account is None:
            raise Redirect("/portal/sign-in")
        if account.kind is None and self.request.url.path != "/portal/welcome":
            raise Redirect("/portal/welcome")
        return account

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def render(self, template: str, *, nav: str = "", status: int = 200, **values: Any) -> Response:
        context = {
            "user": self.session.account,
            "csrf_token": self.session.csrf_token,
            "nav": nav,
            "flashes": self.session.take_flashes(),
            "static": lambda path: f"/portal/static/{path}",
            "request_id": self.request_id,
            **values,
        }
        html = self.portal.templates.get_template(template).render(context)
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str, flash: str | None = None, level: str = "success") -> Response:
        if flash:
            self.session.flash(level, flash)
        return RedirectResponse(url, status_code=303)

    def client_ip(self) -> str:
        client = self.request.client
        return client.host if client else "-"


Handler = Callable[[Ctx], Awaitable[Response]]


def page(portal: Portal, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Load the session, check CSRF on POST, run ``handler``, store the session, set the
    cookie of a new session."""

    async def endpoint(request: Request) -> Response:
        signin = portal.signin
        session = await signin.load(request.cookies.get(COOKIE))
        if session is None:
            session = await signin.start(None)
        ctx = Ctx(portal, request, session, request_id=secrets.token_hex(8))
        try:
            if request.method == "POST":
                ctx.form = await request.form(max_files=1, max_fields=64, max_part_size=MAX_BODY)
                sent = ctx.field("csrf_token")
                if session.new or not hmac.compare_digest(sent, session.csrf_token):
                    return HTMLResponse("Forbidden: the form has expired, reload the page.", 403)
            response = await handler(ctx)
        except Redirect as go:
            response = RedirectResponse(go.url, status_code=303)
        except NotFound:
            response = ctx.render("not_found.html", status=404)
        finally:
            # An uploaded file is spooled to a temporary file until the form is closed.
            if ctx.form is not None:
                await ctx.form.close()
        current = ctx.session
        await signin.save(current)
        if current.new:
            response.set_cookie(
                COOKIE,
                current.raw_id,
                httponly=True,
                samesite="lax",
                secure=portal.secure_cookies,
                path="/portal",
            )
        response.headers["cache-control"] = "no-store"
        return response

    return endpoint


class PortalApp:
    """Security headers on every answer, bodies capped at ``MAX_BODY``."""

    def __init__(self, inner: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._inner(scope, receive, send)
            return
        headers: Mapping[bytes, bytes] = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await _send_plain(send, 413, b"Request body too large.")
            return
        seen = 0

        async def capped() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise ValueError("body over the cap")
            return message

        async def secured(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self._inner(scope, capped, secured)


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
