"""The OpenAPI 3.1 document served at ``/openapi.json``: every endpoint, every error response.

Written by hand (no framework generates it) so it states exactly what the handlers do; the
test suite checks each documented status against the app.
"""

from __future__ import annotations

from typing import Any

from taap.server.discovery import DISCOVERY_PATHS

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str, *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


def _token_operation(version: str) -> dict[str, Any]:
    v6 = version == "v6"
    body_schema = {"$ref": "#/components/schemas/V6Body"} if v6 else {"type": "object"}
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
            "responses": {
                "200": {
                    "description": "Tokens issued",
                    "headers": {
                        "Cache-Control": {"schema": {"type": "string", "const": "no-store"}},
                        "Pragma": {"schema": {"type": "string", "const": "no-cache"}},
                    },
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Tokens"}}
                    },
                },
                "400": _error(
                    "request_malformed, body_invalid, grant_type_unsupported (v6), "
                    "scope_invalid (v6)"
                ),
                "401": _error(
                    "client_auth_failed, pop_missing, pop_malformed, pop_signature_invalid, "
                    "pop_expired, pop_ehts_insufficient, pop_edts_mismatch, pop_replayed",
                    "WWW-Authenticate",
                ),
                "403": _error("not_subscribed"),
                "405": _error("method_not_allowed", "Allow"),
                "413": _error("body_too_large"),
                "415": _error("content_type_unsupported"),
                "429": _error("rate_limited", "Retry-After"),
                "431": _error("headers_too_large"),
                "500": _error("internal (never caused by client input)"),
                "503": _error("unavailable", "Retry-After"),
            },
        }
    }


def _get_operation(op_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                "405": _error("method_not_allowed", "Allow"),
                "431": _error("headers_too_large"),
                "500": _error("internal"),
                "503": _error("unavailable", "Retry-After"),
            },
        }
    }


def openapi_document(*, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the token server at ``base_url``."""
    paths: dict[str, Any] = {
        "/oauth2/v2/tokens": _token_operation("v2"),
        "/oauth2/v6/tokens": _token_operation("v6"),
        "/oauth2/v1/jwks": _get_operation(
            "jwks",
            "Public signing keys (current and previous)",
            {"$ref": "#/components/schemas/Jwks"},
        ),
        "/healthz": _get_operation("healthz", "Liveness", {"type": "object"}),
        "/readyz": _get_operation(
            "readyz",
            "Readiness: database, replay store, rate limiter, signing key",
            {"type": "object"},
        ),
        "/openapi.json": _get_operation("openapi", "This document", {"type": "object"}),
    }
    for index, path in enumerate(DISCOVERY_PATHS):
        paths[path] = _get_operation(
            f"discovery_{index}",
            "Authorization server metadata",
            {"$ref": "#/components/schemas/Discovery"},
        )
    string = {"type": "string"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taap token server",
            "version": "1",
            "description": "TAAP step 2: OAuth 2.0 client credentials plus a PoP token.",
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "pop": {"type": "apiKey", "in": "header", "name": "X-Authorization"},
            },
            "headers": {
                "WWW-Authenticate": {"schema": {"type": "string", "const": 'Basic realm="taap"'}},
                "Allow": {"schema": string},
                "Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "error_description", "error_code"],
                    "properties": {
                        "error": string,
                        "error_description": string,
                        "error_code": string,
                    },
                    "additionalProperties": False,
                },
                "Tokens": {
                    "type": "object",
                    "required": ["id_token", "access_token", "expires_in", "scope", "status"],
                    "properties": {
                        "id_token": string,
                        "access_token": string,
                        "expires_in": {"type": "string", "pattern": "^[0-9]+$"},
                        "scope": {"type": "string", "const": ""},
                        "status": {"type": "string", "const": "approved"},
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
                        "scope": {"type": "string", "const": "response_mode"},
                        "grant-type": {"type": "string", "const": "client_credentials"},
                        "grant_type": {"type": "string", "const": "client_credentials"},
                        "storeId": {"type": "string", "maxLength": 64},
                        "dealerCode": {"type": "string", "maxLength": 64},
                    },
                },
                "Jwks": {
                    "type": "object",
                    "required": ["keys"],
                    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
                },
                "Discovery": {
                    "type": "object",
                    "required": ["issuer", "token_endpoint", "jwks_uri", "taap_token_endpoints"],
                    "properties": {
                        "issuer": string,
                        "token_endpoint": string,
                        "jwks_uri": string,
                        "taap_token_endpoints": {"type": "array", "items": string},
                    },
                },
            },
        },
    }
