"""taap: TAAP (T-Mobile API Access Protocol) for Python.

PoP tokens byte-compatible with T-Mobile's builders, a token server, a client SDK and CLI, and
a resource-server guard. The public surface is re-exported here; see the README.
"""

from __future__ import annotations

from taap.core import *  # noqa: F403
from taap.core import __all__ as _core_names
from taap.errors import *  # noqa: F403
from taap.errors import __all__ as _error_names

__version__ = "0.1.0"

# Issuing and verifying tokens and the request-parsing helpers serve the token server and the
# guard, so they stay in taap.core; every other core name is re-exported here.
_CORE_ONLY = frozenset(
    {
        "issue_access_token",
        "issue_id_token",
        "parse_pairs_json",
        "public_key_from_jwk",
        "split_target",
        "verify_access_token",
    }
)

__all__ = [
    *(name for name in _core_names if name not in _CORE_ONLY),
    "__version__",
    *_error_names,
]
