"""Which request paths the application behind a guard serves (docs/guard.md: a path that no route
or product serves is 404 ``not_found`` before any authentication).

The guard learns the served paths in one of two ways (docs/guard.md, "Unknown paths"):

* **the application's routes**, when the guard sits directly in front of a Starlette or FastAPI
  router: inside the app's own ``middleware=[...]`` as the last entry, or wrapped around an app
  that has no middleware of its own. A path is served when a route matches it, with any method
  (the app then answers 405 itself), or when the router would redirect it to the form with or
  without a trailing slash. Only layers known to pass every path through may stand between
  the guard and the router; any other layer could answer paths of its own;
* otherwise **the product base paths** of the validator: a path under none of them could only
  ever be refused (403 ``not_subscribed``), so it is answered 404 at once instead.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from taap.asgi import ASGIApp, Scope
from taap.errors import NotFoundError
from taap.resource.products import ProductMap

__all__ = ["TOKEN_ENDPOINTS", "ServedPaths", "find_router", "not_found", "plain_path"]

#: The token server's two token endpoints (docs/protocol.md#the-token-endpoints), named in the 404
#: of a near miss. The guard keeps its own copy: it must not import the token server.
TOKEN_ENDPOINTS = ("/oauth2/v2/tokens", "/oauth2/v6/tokens")
_TOKEN_HINT = "not found; the token endpoints are " + " and ".join(
    f"POST {path}" for path in TOKEN_ENDPOINTS
)

# Visible ASCII but "%", "?", "#" and "/" within a segment, and no segment starting with ".".
_PLAIN_PATH = re.compile(rb"(?:/(?!\.)[\x21\x22\x24\x26-\x2e\x30-\x3e\x40-\x7e]*)+")


def plain_path(raw_path: bytes) -> str | None:
    """``raw_path`` as text when it decodes to itself (no escape, no dot segment, visible
    ASCII), else None: then :func:`taap.core.request.canonical_uri` must decode (or refuse) it.
    Matching is about six times cheaper than the full rule, and the common path needs no more."""
    return raw_path.decode("ascii") if _PLAIN_PATH.fullmatch(raw_path) else None


def not_found(path: str) -> NotFoundError:
    """The 404 for ``path``; a path under ``/oauth2/`` is most likely a mistyped token endpoint,
    so its description names the real ones."""
    if (path.lower() + "/").startswith("/oauth2/"):
        return NotFoundError(_TOKEN_HINT, log_detail="unknown path under /oauth2/")
    return NotFoundError(log_detail="no route or product serves this path")


def _pass_through_types() -> tuple[type, ...]:
    # Layers Starlette and FastAPI put between user middleware and the router; each hands
    # every path on unchanged. Imported here: the guard runs without Starlette installed.
    found: list[type] = []
    for module, name in (
        ("starlette.middleware.exceptions", "ExceptionMiddleware"),
        ("starlette.middleware.body_limit", "RequestBodyLimitMiddleware"),
        ("fastapi.middleware.asyncexitstack", "AsyncExitStackMiddleware"),
    ):
        try:
            imported = importlib.import_module(module)
        except ImportError:
            continue
        kind = getattr(imported, name, None)
        if isinstance(kind, type):
            found.append(kind)
    return tuple(found)


def find_router(app: ASGIApp) -> Any | None:
    """The Starlette router that answers every request ``app`` receives, or None when that
    cannot be known (not Starlette, a custom default handler, or some other layer in between)."""
    try:
        from starlette.applications import Starlette
        from starlette.routing import Router
    except ImportError:
        return None
    passing = _pass_through_types()
    current: Any = app
    for _ in range(8):
        if isinstance(current, Starlette):
            if current.user_middleware:
                return None
            current = current.router
        if isinstance(current, Router):
            stack = getattr(current, "middleware_stack", current.app)
            if current.default != current.not_found or stack != current.app:
                return None
            return current
        if not isinstance(current, passing):
            return None
        current = getattr(current, "app", None)
    return None


class ServedPaths:
    """Answers "does the application serve this path?" for one guard."""

    __slots__ = ("_match_none", "_plain_kinds", "_products", "_router")

    def __init__(self, app: ASGIApp, products: ProductMap) -> None:
        self._products = products
        self._router = find_router(app)
        self._match_none: Any = None
        self._plain_kinds: tuple[type, ...] = ()
        if self._router is not None:
            from starlette.routing import Match, Mount, Route

            self._match_none = Match.NONE
            # For these two exact classes, an HTTP request matches (fully or by path only)
            # exactly when the route's path regex matches: six times cheaper than matches(),
            # which also converts the parameters. Subclasses may override it: asked in full.
            self._plain_kinds = (Route, Mount)

    @property
    def knows_routes(self) -> bool:
        """True when the application's routes decide (else the product base paths do)."""
        return self._router is not None

    def serves(self, scope: Scope, path: str) -> bool:
        """Whether a route (or, without known routes, a product) serves ``path`` (decoded)."""
        router = self._router
        if router is None:
            return self._products.product_for(path) is not None
        # Read on every request: routes may be added after the guard was built (FastAPI).
        routes = router.routes
        if self._matches(routes, scope):
            return True
        raw = scope["path"]
        if not router.redirect_slashes or raw == "/":
            return False
        other = raw.rstrip("/") if raw.endswith("/") else raw + "/"
        return self._matches(routes, {**scope, "path": other})

    def _matches(self, routes: Any, scope: Scope) -> bool:
        # With a root_path, Starlette strips it first: leave that to matches() itself.
        route_path = None if scope.get("root_path") else scope["path"]
        plain, none = self._plain_kinds, self._match_none
        for route in routes:
            if route_path is not None and type(route) in plain:
                if route.path_regex.match(route_path) is not None:
                    return True
            elif route.matches(scope)[0] is not none:
                return True
        return False
