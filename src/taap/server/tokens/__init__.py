"""The token endpoints (docs/server.md): ``POST /oauth2/v2/tokens`` and ``/oauth2/v6/tokens``.

- :mod:`~taap.server.tokens.endpoint` — the ASGI handler; one named step per check of
  docs/protocol.md#order-of-checks;
- :mod:`~taap.server.tokens.clientauth` — Basic credentials, the failed-auth limit, v6 body;
- :mod:`~taap.server.tokens.registry_cache` — the registry reads of the hot path, cached;
- :mod:`~taap.server.tokens.minting` — the signed tokens and the answer's body;
- :mod:`~taap.server.tokens.signing` — RS256 inline or on signing threads.
"""

from __future__ import annotations

from taap.server.tokens.endpoint import TokenEndpoints, Version

__all__ = ["TokenEndpoints", "Version"]
