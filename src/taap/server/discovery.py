"""Discovery metadata (RFC 8414 / OIDC Discovery) and the JWKS (docs/server.md, SECURITY.md I4;
docs/server.md, "Discovery metadata").

All URLs are absolute, built from the public base URL. ``token_endpoint`` is the v2 URL (the
NaaS server of the seed); ``taap_token_endpoints`` lists both versions, v2 first. The
revocation (RFC 7009) and introspection (RFC 7662) endpoints are named with their
authentication methods.

The server has token endpoints and nothing else a browser would visit: no authorization
endpoint, so no response types. The document says only what is true and writes out every
member whose registered default would claim more (grant types, ``request_uri`` support).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taap.server.registry.port import SigningKeyRecord

__all__ = ["DISCOVERY_PATHS", "discovery_document", "jwks_document"]

# Where clients look for the metadata of the default issuer ``<public base URL>/oauth2/v1``.
# The first two are at the root, for clients given the base URL (taap's own guard reads the
# first); the last three are derived from the issuer, as strict clients derive them.
DISCOVERY_PATHS = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    # OIDC Discovery section 4: the suffix appended to the issuer
    "/oauth2/v1/.well-known/openid-configuration",
    # RFC 8414 section 3: the suffix inserted between the host and the issuer's path
    "/.well-known/oauth-authorization-server/oauth2/v1",
    # RFC 8414 section 5: the OIDC suffix inserted the same way
    "/.well-known/openid-configuration/oauth2/v1",
)


def discovery_document(*, base_url: str, issuer: str) -> dict[str, Any]:
    """The metadata served at every :data:`DISCOVERY_PATHS` entry.

    ``response_types_supported`` is left out although both RFC 8414 and OIDC Discovery call it
    required: any value would name a flow that does not exist, and an empty list is forbidden
    by the same specifications (members with zero elements are omitted).
    """
    return {
        "issuer": issuer,
        "token_endpoint": f"{base_url}/oauth2/v2/tokens",
        "taap_token_endpoints": [f"{base_url}/oauth2/v2/tokens", f"{base_url}/oauth2/v6/tokens"],
        "jwks_uri": f"{base_url}/oauth2/v1/jwks",
        "revocation_endpoint": f"{base_url}/oauth2/v1/revoke",
        "introspection_endpoint": f"{base_url}/oauth2/v1/introspect",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        # Basic, as at the token endpoints; revocation also wants the PoP (docs/server.md)
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic"],
        # a resource server's own id and secret, never a client's
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "access_token_signing_alg_values_supported": ["RS256"],
        "taap_pop_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["response_mode"],
        # OIDC Discovery's default is true; there is no authorization request to refer to
        "request_uri_parameter_supported": False,
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
