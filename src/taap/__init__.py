"""taap: TAAP (T-Mobile API Access Protocol) for Python.

PoP tokens byte-compatible with T-Mobile's builders, a token server, a client SDK and CLI, and
a resource-server guard. The public surface is re-exported here; see the README.
"""

from __future__ import annotations

from taap.core import (
    JAVA_COMPAT,
    LENIENT,
    STRICT,
    AccessToken,
    MemoryReplayStore,
    PopPolicy,
    PrivateKey,
    PublicKey,
    ReplayStore,
    RequestParts,
    SignedValues,
    VerifiedPop,
    build_pop_token,
    canonical_uri,
    compute_edts,
    decode_pop_token,
    generate_private_key,
    jwk_thumbprint,
    load_private_key,
    load_public_key,
    request_pairs,
    request_parts,
    verify_pop_token,
)
from taap.errors import *  # noqa: F403
from taap.errors import __all__ as _error_names

__version__ = "0.1.0"

__all__ = [
    "JAVA_COMPAT",
    "LENIENT",
    "STRICT",
    "AccessToken",
    "MemoryReplayStore",
    "PopPolicy",
    "PrivateKey",
    "PublicKey",
    "ReplayStore",
    "RequestParts",
    "SignedValues",
    "VerifiedPop",
    "__version__",
    "build_pop_token",
    "canonical_uri",
    "compute_edts",
    "decode_pop_token",
    "generate_private_key",
    "jwk_thumbprint",
    "load_private_key",
    "load_public_key",
    "request_pairs",
    "request_parts",
    "verify_pop_token",
    *_error_names,
]
