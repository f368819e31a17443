"""The resource-server guard (docs/guard.md): verify step-4 requests in front of any ASGI app.

Needs nothing but the token server's base URL (discovery → JWKS) or static keys; it never
imports the token server or the client SDK. :mod:`taap.resource.dependency` (Starlette/FastAPI
per-route use) and :mod:`taap.resource.sample` (the sample APIs) need Starlette and are
imported on their own.
"""

from __future__ import annotations

from taap.resource.keys import JwksKeys, KeyProvider, KeySet, StaticKeys, parse_jwks
from taap.resource.middleware import GuardMiddleware
from taap.resource.principal import PRINCIPAL_SCOPE_KEY, Principal
from taap.resource.products import DEFAULT_PRODUCT_PATHS, ProductMap
from taap.resource.responses import WWW_AUTHENTICATE, error_response
from taap.resource.settings import GuardSettings
from taap.resource.validator import Validator, bearer_token

__all__ = [
    "DEFAULT_PRODUCT_PATHS",
    "PRINCIPAL_SCOPE_KEY",
    "WWW_AUTHENTICATE",
    "GuardMiddleware",
    "GuardSettings",
    "JwksKeys",
    "KeyProvider",
    "KeySet",
    "Principal",
    "ProductMap",
    "StaticKeys",
    "Validator",
    "bearer_token",
    "error_response",
    "parse_jwks",
]
