"""The token server (docs/server.md, docs/registry.md): ASGI app, client registry, replay and rate
limits.

``create_app(settings, registry, pepper=...)`` builds the ASGI app;
``taap.server.runtime.build_app(settings)`` also opens the registry and the stores, as
``taap serve`` does.
"""

from __future__ import annotations

from taap.server.app import TokenServerApp, create_app
from taap.server.settings import ServerSettings

__all__ = ["ServerSettings", "TokenServerApp", "create_app"]
