"""``taap gateway``: a reverse proxy that verifies every call as the guard does and forwards only
verified ones to the product's upstream, an API in any language (docs/gateway.md).

Built on :mod:`taap.resource` (the same middleware, validator and error table) and served by
:mod:`taap.listener`; it never imports the token server.
"""

from __future__ import annotations

from taap.gateway.app import GatewayApp, create_gateway_app
from taap.gateway.settings import GatewaySettings, load_settings, read_config_file

__all__ = [
    "GatewayApp",
    "GatewaySettings",
    "create_gateway_app",
    "load_settings",
    "read_config_file",
]
