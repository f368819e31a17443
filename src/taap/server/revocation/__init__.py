"""Revocation and introspection at the token server (docs/server.md, "Revocation and
introspection").

- :mod:`~taap.server.revocation.endpoints` — the three endpoints by path, and their shared state;
- :mod:`~taap.server.revocation.revoke` — ``POST /oauth2/v1/revoke`` (RFC 7009);
- :mod:`~taap.server.revocation.introspect` — ``POST /oauth2/v1/introspect`` (RFC 7662);
- :mod:`~taap.server.revocation.feed` — ``GET /oauth2/v1/revocations``, the log for guards;
- :mod:`~taap.server.revocation.source` — the log read from the registry, the server's state;
- :mod:`~taap.server.revocation.verify` — is a presented token one of this server's;
- :mod:`~taap.server.revocation.common` — the token body, and how each endpoint answers.
"""

from __future__ import annotations

from taap.server.revocation.endpoints import RevocationEndpoints
from taap.server.revocation.revoke import TokenRevoker
from taap.server.revocation.source import (
    FetchRevocations,
    RegistryRevocations,
    RevocationSource,
    registry_revocations,
)

__all__ = [
    "FetchRevocations",
    "RegistryRevocations",
    "RevocationEndpoints",
    "RevocationSource",
    "TokenRevoker",
    "registry_revocations",
]
