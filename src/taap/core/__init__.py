"""The sans-I/O core: keys, PoP build/verify/explain, request canonicalization, tokens, replay."""

from __future__ import annotations

from taap.core.capture import CapturedRequest, parse_captured, parse_curl, parse_har, parse_http
from taap.core.explain import Explanation, Finding, explain_pop
from taap.core.keys import (
    PrivateKey,
    PublicKey,
    generate_private_key,
    jwk_thumbprint,
    load_private_key,
    load_public_key,
    public_key_from_jwk,
)
from taap.core.pop import (
    JAVA_COMPAT,
    LENIENT,
    STRICT,
    PopPolicy,
    VerifiedPop,
    build_pop_token,
    compute_edts,
    decode_pop_token,
    verify_pop_token,
)
from taap.core.replay import MemoryReplayStore, ReplayStore
from taap.core.request import (
    RequestParts,
    SignedValues,
    canonical_uri,
    parse_pairs_json,
    request_pairs,
    request_parts,
    split_target,
)
from taap.core.tokens import AccessToken, issue_access_token, issue_id_token, verify_access_token

__all__ = [
    "JAVA_COMPAT",
    "LENIENT",
    "STRICT",
    "AccessToken",
    "CapturedRequest",
    "Explanation",
    "Finding",
    "MemoryReplayStore",
    "PopPolicy",
    "PrivateKey",
    "PublicKey",
    "ReplayStore",
    "RequestParts",
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
]
