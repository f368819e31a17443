"""The client registry (TAAP.md A5): who may ask for tokens, with which keys, for which APIs.

This package's own names are the port and its records (:mod:`taap.server.registry.port`);
importing it loads neither SQLAlchemy nor Alembic, so the CLI's other commands stay light.
The implementations live in ``sql`` (:func:`~taap.server.registry.sql.open_registry`) and
``memory``; docs/registry.md describes the modules.
"""

from __future__ import annotations

from taap.server.registry.port import (
    DEFAULT_PRODUCTS,
    ApiProduct,
    ClientRecord,
    ClientStatus,
    Registry,
    RegistryAdmin,
    RegistryReader,
    SigningKeyRecord,
    TokenServerVersion,
)

__all__ = [
    "DEFAULT_PRODUCTS",
    "ApiProduct",
    "ClientRecord",
    "ClientStatus",
    "Registry",
    "RegistryAdmin",
    "RegistryReader",
    "SigningKeyRecord",
    "TokenServerVersion",
]
