"""What a guarded application learns about the caller (docs/guard.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PRINCIPAL_SCOPE_KEY", "Principal"]

#: ASGI scope key under which the middleware stores the :class:`Principal`.
PRINCIPAL_SCOPE_KEY = "taap.principal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """A caller that passed the guard: its access token and PoP verified, its jti recorded."""

    client_id: str
    apis: tuple[str, ...]
    product: str
    claims: Mapping[str, Any]
    pop_jti: str
    token_jti: str
    kid: str

    def __repr__(self) -> str:
        # Claims hold the client's public key and optional dealer data: keep reprs short.
        return f"Principal(client_id={self.client_id!r}, product={self.product!r})"
