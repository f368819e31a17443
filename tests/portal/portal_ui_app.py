"""A small Starlette app that renders the portal's base.html and macros.html with plain Jinja2,
serves the package's static files and sends the portal's Content-Security-Policy: the visual
layer tested on its own, before any portal route exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = [
    "CSP",
    "LONG_TOKEN",
    "PORTAL_DIR",
    "XSS",
    "UiApp",
    "build_app",
    "environment",
    "render",
]

PORTAL_DIR = Path(__file__).resolve().parents[2] / "src" / "taap" / "portal"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
XSS = "<img src=x onerror=alert(1)>"
LONG_TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "A1b2C3d4" * 60
CSRF_TOKEN = "csrf-token-for-tests"

SAMPLE = """{% extends "base.html" %}
{% import "macros.html" as m with context %}
{% block title %}Style guide{% endblock %}
{% block main %}
<h1>Style guide {{ v }}</h1>
{{ m.error_summary([("app_name", "Enter a shorter app name " ~ v), ("products", "Choose " ~ v)]) }}
<form method="post" action="/sample" novalidate>
  {{ m.csrf() }}
  {{ m.field("app_name", "App name", value=v, error="Enter a shorter app name " ~ v,
             hint="Shown to operators " ~ v, autocomplete="off", required=True, maxlength=80) }}
  {{ m.field("email", "Email", type="email", value=v, autocomplete="email") }}
  {{ m.field("code", "Code", value="", hint=v, inputmode="numeric", autocomplete="one-time-code") }}
  {{ m.field("public_key", "Public key", type="file", hint="PEM or JWK " ~ v) }}
  {{ m.field("pem", "Public key PEM", type="textarea", value=v) }}
  {% call m.fieldset("products", "API products", error="Choose " ~ v, hint="Pick " ~ v) %}
    {{ m.checkbox("products", "connectivity", "Connectivity", checked=True, hint="v2 · " ~ v) }}
    {{ m.checkbox("products", "sms", "SMS Notification " ~ v) }}
  {% endcall %}
  {% call m.fieldset("account_type", "Account type") %}
    {{ m.radio("account_type", "individual", "Individual", checked=True) }}
    {{ m.radio("account_type", "enterprise", "Enterprise " ~ v, hint="A company " ~ v) }}
  {% endcall %}
  <div class="actions"><button type="submit">Create</button></div>
</form>
<h2>Credentials</h2>
{{ m.secret_once("Client secret", "secret-" ~ v, "client-secret") }}
{{ m.copy_field("Client ID", "client-" ~ v, "client-id") }}
<h2>Get started</h2>
{% set curl = "curl -X POST https://api.example/oauth2/v6/tokens -H 'X-Authorization: " %}
{{ m.code_block(curl ~ long_token ~ "' " ~ v, "curl") }}
{{ m.empty_state("No apps yet " ~ v, "Create your first app " ~ v,
                 "/portal/apps/new", "Create app") }}
<div class="table-wrap"><table class="stack">
  <caption>Keys {{ v }}</caption>
  <thead><tr><th scope="col">Thumbprint</th><th scope="col" class="num">Uses</th></tr></thead>
  <tbody><tr><td data-label="Thumbprint"><code>{{ long_token[:43] }}</code></td>
  <td data-label="Uses" class="num">1,024</td></tr></tbody>
</table></div>
<section class="danger-zone" aria-labelledby="danger-title">
  <h2 id="danger-title">Danger zone</h2>
  <form method="post" action="/sample" data-confirm-name="{{ app_name }}">
    {{ m.csrf() }}
    {{ m.field("confirm_name", "Type the app name to confirm", data_confirm_input=True) }}
    <button type="submit" class="button-danger">Delete app</button>
  </form>
</section>
{% endblock %}
"""

KEYGEN = """{% extends "base.html" %}
{% import "macros.html" as m with context %}
{% block title %}Keys{% endblock %}
{% block main %}
<h1>Keys</h1>
<form id="keygen-form" data-keygen method="post" action="/keys">
  {{ m.csrf() }}
  <textarea name="public_key_pem" hidden></textarea>
  <button type="button" data-keygen-button>Generate key pair in browser</button>
</form>
{% endblock %}
"""

DONE = """{% extends "base.html" %}
{% block title %}Key added{% endblock %}
{% block main %}<h1>Key added</h1>{% endblock %}
"""


@dataclass
class User:
    email: str
    is_admin: bool = False
    company_name: str | None = None
    role: str = "owner"


@dataclass
class UiApp:
    """The app and what it captured: every form POSTed to /keys."""

    app: Starlette
    posts: list[dict[str, str]] = field(default_factory=list)


def environment() -> Environment:
    loader = ChoiceLoader(
        [
            FileSystemLoader(PORTAL_DIR / "templates"),
            DictLoader({"sample.html": SAMPLE, "keygen.html": KEYGEN, "done.html": DONE}),
        ]
    )
    return Environment(loader=loader, autoescape=True)


def context(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "user": User("dev@example.test", is_admin=True, company_name="Example Ltd"),
        "csrf_token": CSRF_TOKEN,
        "nav": "apps",
        "flashes": [],
        "static": lambda path: f"/portal/static/{path}",
        "request_id": "req-0123456789abcdef",
    }
    base.update(extra)
    return base


def render(env: Environment, name: str, **extra: Any) -> str:
    return env.get_template(name).render(context(**extra))


def build_app() -> UiApp:
    env = environment()
    ui = UiApp(Starlette())

    def html(name: str, **extra: Any) -> Response:
        return HTMLResponse(render(env, name, **extra))

    async def sample(request: Request) -> Response:
        value = XSS if request.query_params.get("xss") else "demo app"
        flashes = [("success", f"App created {value}"), ("error", f"Could not {value}")]
        user = User(value, is_admin=True, company_name=value)
        return html(
            "sample.html",
            v=value,
            app_name=value,
            long_token=LONG_TOKEN,
            flashes=flashes,
            user=user,
        )

    async def keygen(request: Request) -> Response:
        return html("keygen.html", nav="/portal/")

    async def keys(request: Request) -> Response:
        # Parsed by hand: the keygen form is urlencoded, and python-multipart is not needed.
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        ui.posts.append(dict(parse_qsl((await request.body()).decode(), strict_parsing=True)))
        return RedirectResponse("/keys/done", status_code=303)

    async def done(request: Request) -> Response:
        return html("done.html", flashes=[("success", "Key added")])

    async def error(request: Request) -> Response:
        body = render(env, "error.html", status=404, message="No such app.", user=None)
        return HTMLResponse(body, status_code=404)

    ui.app.router.routes.extend(
        [
            Route("/sample", sample),
            Route("/keygen", keygen),
            Route("/keys", keys, methods=["POST"]),
            Route("/keys/done", done),
            Route("/error", error),
            Mount("/portal/static", StaticFiles(directory=PORTAL_DIR / "static")),
        ]
    )
    ui.app.add_middleware(_SecurityHeaders)
    return ui


class _SecurityHeaders:
    """Adds the portal's CSP and frame headers to every response (``/nocsp/...`` aside: the
    escaping test also runs with the CSP off, so the CSP cannot hide an escaping bug)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bare = scope["path"].startswith("/nocsp/")
        if bare:
            scope = dict(scope, path=scope["path"][len("/nocsp") :], raw_path=None)

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start" and not bare:
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, with_headers)
