"""The OpenAPI 3.1 document served at ``/openapi.json``: every endpoint, every error response.

Written by hand (no framework generates it) so it states exactly what the handlers do; the
test suite checks each documented status against the app. The document is data: tables of the
endpoints and of their error responses, the shared components, and :func:`openapi_document`,
which assembles them for one base URL.
"""

from __future__ import annotations

import copy
from typing import Any

from taap.server.discovery import DISCOVERY_PATHS

__all__ = ["openapi_document"]

_STRING = {"type": "string"}
_DIGITS = {"type": "string", "pattern": "^[0-9]+$"}
_OBJECT = {"type": "object"}


def _const(value: str) -> dict[str, str]:
    return {"type": "string", "const": value}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


_INFO = {
    "title": "taap token server",
    "version": "1",
    "description": "TAAP step 2: OAuth 2.0 client credentials plus a PoP token.",
}

# The members of an active introspection answer, every one present (v6 adds two optional ones).
_ACTIVE: dict[str, Any] = {
    "active": {"const": True},
    "client_id": _STRING,
    "sub": _STRING,
    "iss": _STRING,
    "exp": {"type": "integer"},
    "iat": {"type": "integer"},
    "jti": _STRING,
    "token_type": _const("Bearer"),
    "apis": {"type": "array", "items": _STRING},
    "cnf": {"type": "object", "required": ["jkt"], "properties": {"jkt": _STRING}},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "error_description", "error_code"],
        "properties": {"error": _STRING, "error_description": _STRING, "error_code": _STRING},
        "additionalProperties": False,
    },
    "Tokens": {
        "type": "object",
        "required": ["id_token", "access_token", "expires_in", "scope", "status"],
        "properties": {
            "id_token": _STRING,
            "access_token": _STRING,
            "expires_in": _DIGITS,
            "scope": _const(""),
            "status": _const("approved"),
        },
        "additionalProperties": False,
    },
    "V6Body": {
        "type": "object",
        "required": ["client_id", "client_secret", "scope"],
        "anyOf": [{"required": ["grant-type"]}, {"required": ["grant_type"]}],
        "properties": {
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1},
            "scope": _const("response_mode"),
            "grant-type": _const("client_credentials"),
            "grant_type": _const("client_credentials"),
            "storeId": {"type": "string", "maxLength": 64},
            "dealerCode": {"type": "string", "maxLength": 64},
        },
    },
    "TokenForm": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 1, "maxLength": 8192},
            "token_type_hint": {"type": "string", "maxLength": 64},
        },
    },
    "Revoked": {"type": "object", "additionalProperties": False},
    "Introspection": {
        "oneOf": [
            {
                "type": "object",
                "required": ["active"],
                "properties": {"active": {"const": False}},
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": list(_ACTIVE),
                "properties": _ACTIVE | {"storeId": _STRING, "dealerCode": _STRING},
                "additionalProperties": False,
            },
        ]
    },
    "RevocationFeed": {
        "type": "object",
        "required": ["seq", "entries"],
        "properties": {
            "seq": {"type": "integer", "minimum": 0},
            "entries": {
                "type": "array",
                "items": {
                    "type": "array",
                    "minItems": 7,
                    "maxItems": 7,
                    "description": "seq, kind, client_id, jti, api_id, not_before, expires_at",
                },
            },
        },
        "additionalProperties": False,
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": _OBJECT}},
    },
    "Discovery": {
        "type": "object",
        "required": [
            "issuer",
            "token_endpoint",
            "jwks_uri",
            "taap_token_endpoints",
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
        ],
        "properties": {
            "issuer": _STRING,
            "token_endpoint": _STRING,
            "jwks_uri": _STRING,
            "taap_token_endpoints": {"type": "array", "items": _STRING},
            "revocation_endpoint": _STRING,
            "introspection_endpoint": _STRING,
            "grant_types_supported": {"type": "array", "items": _const("client_credentials")},
            "token_endpoint_auth_methods_supported": {"type": "array", "items": _STRING},
        },
    },
}

_COMPONENTS = {
    "securitySchemes": {
        "basic": {"type": "http", "scheme": "basic"},
        "pop": {"type": "apiKey", "in": "header", "name": "X-Authorization"},
    },
    "headers": {
        "WWW-Authenticate": {"schema": _const('Basic realm="taap"')},
        "Allow": {"schema": _STRING},
        "Retry-After": {"schema": _DIGITS},
    },
    "schemas": _SCHEMAS,
}

# Status -> (the error codes it carries, the response headers that come with it).
_ErrorTable = dict[str, tuple[str, tuple[str, ...]]]

_TOKEN_ERRORS: _ErrorTable = {
    "400": (
        "request_malformed, body_invalid, grant_type_unsupported (v6), scope_invalid (v6)",
        (),
    ),
    "401": (
        "client_auth_failed, pop_missing, pop_malformed, pop_signature_invalid, "
        "pop_expired, pop_ehts_insufficient, pop_edts_mismatch, pop_replayed",
        ("WWW-Authenticate",),
    ),
    "403": ("not_subscribed", ()),
    "405": ("method_not_allowed", ("Allow",)),
    "413": ("body_too_large", ()),
    "415": ("content_type_unsupported", ()),
    "429": ("rate_limited", ("Retry-After",)),
    "431": ("headers_too_large", ()),
    "500": ("internal (never caused by client input)", ()),
    "503": ("unavailable", ("Retry-After",)),
}

_GET_ERRORS: _ErrorTable = {
    "405": ("method_not_allowed", ("Allow",)),
    "431": ("headers_too_large", ()),
    "500": ("internal", ()),
    "503": ("unavailable", ("Retry-After",)),
}

_REVOKE_ERRORS: _ErrorTable = {
    "400": ("request_malformed, body_invalid", ()),
    "401": (
        "client_auth_failed, pop_missing, pop_malformed, pop_signature_invalid, "
        "pop_expired, pop_ehts_insufficient, pop_edts_mismatch, pop_replayed",
        ("WWW-Authenticate",),
    ),
    **{status: _TOKEN_ERRORS[status] for status in ("405", "413", "415", "429", "431", "500")},
    "503": ("unavailable (the registry cannot record the revocation)", ("Retry-After",)),
}

_INTROSPECT_ERRORS: _ErrorTable = {
    "400": ("request_malformed, body_invalid", ()),
    "401": ("client_auth_failed (a resource server's credentials)", ("WWW-Authenticate",)),
    **{status: _TOKEN_ERRORS[status] for status in ("405", "413", "415", "429", "431", "500")},
    "503": ("unavailable (registry or revocation state)", ("Retry-After",)),
}

_FEED_ERRORS: _ErrorTable = {"400": ("request_malformed", ()), **_GET_ERRORS}

_TOKEN_VERSIONS = ("v2", "v6")

# (path, operationId, summary, schema of the 200 body) of every GET endpoint.
_JWKS, _DISCOVERY = _ref("schemas", "Jwks"), _ref("schemas", "Discovery")
_GET_ENDPOINTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("/oauth2/v1/jwks", "jwks", "Public signing keys (current and previous)", _JWKS),
    ("/healthz", "healthz", "Liveness", _OBJECT),
    ("/readyz", "readyz", "Readiness: database, replay store, rate limiter, signing key", _OBJECT),
    ("/openapi.json", "openapi", "This document", _OBJECT),
    *(
        (path, f"discovery_{index}", "Authorization server metadata", _DISCOVERY)
        for index, path in enumerate(DISCOVERY_PATHS)
    ),
)


def _errors(table: _ErrorTable) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, headers) in table.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("schemas", "Error")}},
        }
        if headers:
            response["headers"] = {name: _ref("headers", name) for name in headers}
        responses[status] = response
    return responses


_NO_STORE_HEADERS = {
    "Cache-Control": {"schema": _const("no-store")},
    "Pragma": {"schema": _const("no-cache")},
}


def _token_operation(version: str) -> dict[str, Any]:
    body_schema = _ref("schemas", "V6Body") if version == "v6" else _OBJECT
    tokens_issued = {
        "description": "Tokens issued",
        "headers": _NO_STORE_HEADERS,
        "content": {"application/json": {"schema": _ref("schemas", "Tokens")}},
    }
    return {
        "post": {
            "operationId": f"token_{version}",
            "summary": f"Issue an access and an ID token ({version}, TAAP step 2)",
            "security": [{"basic": [], "pop": []}],
            "parameters": [
                {
                    "name": "X-Authorization",
                    "in": "header",
                    "required": True,
                    "description": "The step-1 OAuth PoP token (compact RS256 JWS, no prefix).",
                    "schema": {"type": "string", "maxLength": 8192},
                }
            ],
            "requestBody": {
                # Content-Type application/json is required even when a v2 body is empty, so
                # the body is declared required; an empty v2 body is accepted as well.
                "required": True,
                "description": (
                    "v6: the JSON object below. v2: any JSON object (ignored but bound by the "
                    "PoP when signed), or an empty body sent with Content-Type "
                    "application/json."
                ),
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": {"200": tokens_issued, **_errors(_TOKEN_ERRORS)},
        }
    }


def _token_body(description: str) -> dict[str, Any]:
    form = _ref("schemas", "TokenForm")
    return {
        "required": True,
        "description": description,
        "content": {
            "application/x-www-form-urlencoded": {"schema": form},
            "application/json": {"schema": form},
        },
    }


def _revoke_operation() -> dict[str, Any]:
    done = {
        "description": "Revoked, or nothing to revoke (RFC 7009 §2.2): always {}",
        "headers": _NO_STORE_HEADERS,
        "content": {"application/json": {"schema": _ref("schemas", "Revoked")}},
    }
    return {
        "post": {
            "operationId": "revoke",
            "summary": "Revoke one of the caller's own tokens (RFC 7009)",
            "security": [{"basic": [], "pop": []}],
            "parameters": [
                {
                    "name": "X-Authorization",
                    "in": "header",
                    "required": True,
                    "description": "A PoP over this request, as at the token endpoints.",
                    "schema": {"type": "string", "maxLength": 8192},
                }
            ],
            "requestBody": _token_body(
                "The token to revoke (an access or ID token of the caller); token_type_hint "
                "is accepted and ignored."
            ),
            "responses": {"200": done, **_errors(_REVOKE_ERRORS)},
        }
    }


def _introspect_operation() -> dict[str, Any]:
    answer = {
        "description": "The token's state (RFC 7662 §2.2)",
        "headers": _NO_STORE_HEADERS,
        "content": {"application/json": {"schema": _ref("schemas", "Introspection")}},
    }
    return {
        "post": {
            "operationId": "introspect",
            "summary": "Is this access token live, and what does it say (RFC 7662)",
            "security": [{"basic": []}],
            "requestBody": _token_body("The token to introspect."),
            "responses": {"200": answer, **_errors(_INTROSPECT_ERRORS)},
        }
    }


def _feed_operation() -> dict[str, Any]:
    def number(name: str, minimum: int, maximum: int, text: str) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
        return {"name": name, "in": "query", "description": text, "schema": schema}

    page = {
        "description": "The log rows after 'after', oldest first",
        "headers": {"Cache-Control": {"schema": _const("no-store")}},
        "content": {"application/json": {"schema": _ref("schemas", "RevocationFeed")}},
    }
    return {
        "get": {
            "operationId": "revocations",
            "summary": "The revocation log, for guards",
            "parameters": [
                number("after", 0, 2**63 - 1, "The last seq the caller has (default 0)."),
                number("limit", 1, 5000, "Rows at most (default 5000)."),
            ],
            "responses": {"200": page, **_errors(_FEED_ERRORS)},
        }
    }


def _get_operation(op_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    ok = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "responses": {"200": ok, **_errors(_GET_ERRORS)},
        }
    }


def openapi_document(*, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the token server at ``base_url``."""
    paths = {f"/oauth2/{version}/tokens": _token_operation(version) for version in _TOKEN_VERSIONS}
    paths["/oauth2/v1/revoke"] = _revoke_operation()
    paths["/oauth2/v1/introspect"] = _introspect_operation()
    paths["/oauth2/v1/revocations"] = _feed_operation()
    for path, op_id, summary, schema in _GET_ENDPOINTS:
        paths[path] = _get_operation(op_id, summary, schema)
    document = {
        "openapi": "3.1.0",
        "info": _INFO,
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": _COMPONENTS,
    }
    # Every call hands out its own copy: the tables above are shared module state.
    return copy.deepcopy(document)
