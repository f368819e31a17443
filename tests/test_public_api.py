"""Pins the curated public surface: the exact ``__all__`` of the packages users import, every
name in it importable, and nothing private leaking from any package.

A rename, a removal or an addition changes the lists below: that must be a decision taken here,
never a side effect of moving code.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# sorted(module.__all__) of each public package.
PINNED: dict[str, list[str]] = {
    "taap": [
        "AccessToken",
        "BodyInvalidError",
        "BodyTooLargeError",
        "CapturedRequest",
        "ClientAuthError",
        "ConfigurationError",
        "ContentTypeError",
        "Explanation",
        "Finding",
        "GrantTypeUnsupportedError",
        "HeadersTooLargeError",
        "JAVA_COMPAT",
        "KeyFormatError",
        "LENIENT",
        "MemoryReplayStore",
        "MethodNotAllowedError",
        "NotFoundError",
        "NotSubscribedError",
        "PopBuildError",
        "PopCoverageError",
        "PopDigestError",
        "PopError",
        "PopExpiredError",
        "PopMalformedError",
        "PopMissingError",
        "PopPolicy",
        "PopReplayedError",
        "PopSignatureError",
        "PrivateKey",
        "PublicKey",
        "RateLimitedError",
        "ReplayStore",
        "RequestMalformedError",
        "RequestParts",
        "RequestTimeoutError",
        "STRICT",
        "ScopeInvalidError",
        "SignedValues",
        "TaapError",
        "TokenInvalidError",
        "TokenRevokedError",
        "TransportError",
        "UnavailableError",
        "UnknownKeyIdError",
        "UpstreamTimeoutError",
        "UpstreamUnavailableError",
        "VerifiedPop",
        "__version__",
        "build_pop_token",
        "canonical_uri",
        "compute_edts",
        "decode_pop_token",
        "error_from_wire",
        "explain_pop",
        "generate_private_key",
        "jwk_thumbprint",
        "load_private_key",
        "load_public_key",
        "parse_captured",
        "parse_curl",
        "parse_har",
        "parse_http",
        "request_pairs",
        "request_parts",
        "verify_pop_token",
    ],
    "taap.core": [
        "AccessToken",
        "CapturedRequest",
        "Explanation",
        "Finding",
        "JAVA_COMPAT",
        "LENIENT",
        "MemoryReplayStore",
        "PopPolicy",
        "PrivateKey",
        "PublicKey",
        "ReplayStore",
        "RequestParts",
        "STRICT",
        "SignedValues",
        "VerifiedPop",
        "build_pop_token",
        "canonical_uri",
        "compute_edts",
        "decode_pop_token",
        "explain_pop",
        "generate_private_key",
        "issue_access_token",
        "issue_id_token",
        "jwk_thumbprint",
        "load_private_key",
        "load_public_key",
        "parse_captured",
        "parse_curl",
        "parse_har",
        "parse_http",
        "parse_pairs_json",
        "public_key_from_jwk",
        "request_pairs",
        "request_parts",
        "split_target",
        "verify_access_token",
        "verify_pop_token",
    ],
    "taap.client": [
        "ClientCredentials",
        "NO_RETRY",
        "PopAuth",
        "PopRequestsAuth",
        "PreparedRequest",
        "RetryNotice",
        "RetryPolicy",
        "Secret",
        "Token",
        "TokenCache",
        "TokenClient",
        "TokenEndpoint",
        "aintrospect",
        "api_pop",
        "basic_authorization",
        "build_introspection_request",
        "build_revocation_request",
        "build_token_request",
        "curl_command",
        "endpoint_version",
        "error_from_response",
        "introspect",
        "parse_expires_in",
        "parse_retry_after",
        "token_from_response",
    ],
    "taap.gateway": [
        "GatewayApp",
        "GatewaySettings",
        "create_gateway_app",
        "load_settings",
        "read_config_file",
    ],
    "taap.postman": [
        "COLLECTION_FILE",
        "ENVIRONMENT_FILE",
        "SAMPLE_CALLS",
        "PostmanExport",
        "SampleCall",
        "WrittenFiles",
        "build_collection",
        "build_environment",
        "write_postman_files",
    ],
    "taap.resource": [
        "DEFAULT_PRODUCT_PATHS",
        "GuardMiddleware",
        "GuardSettings",
        "JwksKeys",
        "KeyProvider",
        "KeySet",
        "PRINCIPAL_SCOPE_KEY",
        "Principal",
        "ProductMap",
        "StaticKeys",
        "Validator",
        "WWW_AUTHENTICATE",
        "bearer_token",
        "error_response",
        "parse_jwks",
    ],
    "taap.server": [
        "ServerSettings",
        "TokenServerApp",
        "create_app",
    ],
}

OTHER_PACKAGES = ["taap.errors", "taap.listener", "taap.stores", "taap.sandbox"]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_all_is_exactly_the_pinned_list(name: str) -> None:
    exported = list(importlib.import_module(name).__all__)
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    added = sorted(set(exported) - set(PINNED[name]))
    removed = sorted(set(PINNED[name]) - set(exported))
    assert (added, removed) == ([], []), f"{name}.__all__ changed: added {added}, removed {removed}"


@pytest.mark.parametrize(("module", "attr"), [(m, a) for m in sorted(PINNED) for a in PINNED[m]])
def test_every_pinned_name_imports(module: str, attr: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module} import {attr}", namespace)
    assert namespace[attr] is not None


@pytest.mark.parametrize("name", sorted(PINNED) + OTHER_PACKAGES)
def test_all_names_exist_and_are_public(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
        assert not attr.startswith("_") or attr == "__version__"


def test_core_does_not_pull_in_web_or_sql_stacks() -> None:
    # The sans-I/O core must import without starlette, sqlalchemy, redis or httpx.
    code = (
        "import sys, taap.core;"
        "bad=[m for m in ('starlette','sqlalchemy','redis','httpx','uvicorn') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
