"""What tests put on the wire and read off it by hand: Basic credentials, JWT segments."""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["basic", "jwt_part"]


def basic(client_id: str, secret: str) -> str:
    """The ``Authorization`` value of client credentials (RFC 7617, not form-encoded)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def jwt_part(token: str, index: int) -> dict[str, Any]:
    """The JSON of a compact JWT's header (0) or payload (1), unverified."""
    segment = token.split(".")[index]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data
