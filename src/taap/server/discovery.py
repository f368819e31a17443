"""Discovery metadata (RFC 8414 / OIDC Discovery) and the JWKS (TAAP.md A4, SECURITY.md I4).

All URLs are absolute, built from the public base URL. ``token_endpoint`` is the v2 URL (the
NaaS server of the seed); ``taap_token_endpoints`` lists both versions, v2 first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taap.server.registry.port import SigningKeyRecord

__all__ = ["DISCOVERY_PATHS", "discovery_document", "jwks_document"]

DISCOVERY_PATHS = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/oauth2/v1/.well-known/openid-configuration",
)


def discovery_document(*, base_url: str, issuer: str) -> dict[str, Any]:
    """The metadata served at every :data:`DISCOVERY_PATHS` entry."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{base_url}/oauth2/v2/tokens",
        "taap_token_endpoints": [f"{base_url}/oauth2/v2/tokens", f"{base_url}/oauth2/v6/tokens"],
        "jwks_uri": f"{base_url}/oauth2/v1/jwks",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "access_token_signing_alg_values_supported": ["RS256"],
        "taap_pop_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["response_mode"],
    }


def jwks_document(keys: Sequence[SigningKeyRecord]) -> dict[str, Any]:
    """Public JWKS of the registry's published keys (never a private member)."""
    published = []
    for record in keys:
        jwk = record.key.public.jwk
        published.append(
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": record.kid}
            | {"n": jwk["n"], "e": jwk["e"]}
        )
    return {"keys": published}
