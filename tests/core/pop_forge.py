"""Helpers for the PoP tests: a default request, good claims, raw segments (no fixtures)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from taap.core import compute_edts
from taap.core._b64 import b64url_encode

IAT = 1_700_000_000
NOW = IAT + 1

REQUEST: list[tuple[str, str]] = [
    ("Content-Type", "application/json"),
    ("Authorization", "Bearer UtKV75JJbVAewOrkHMXhLbiQ11SS"),
    ("uri", "/commerce/v1/orders?account=1"),
    ("http-method", "POST"),
    ("body", '{"orderId": 100}'),
]


def good_claims(pairs: list[tuple[str, str]] | None = None, **changes: Any) -> dict[str, Any]:
    """Valid strict claims over ``pairs`` (default REQUEST); ``changes`` override or, with
    the value ``...``, remove members."""
    pairs = REQUEST if pairs is None else pairs
    claims: dict[str, Any] = {
        "edts": compute_edts(v for _, v in pairs),
        "v": "1",
        "exp": IAT + 60,
        "ehts": ";".join(n for n, _ in pairs),
        "iat": IAT,
        "jti": "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
    }
    for name, value in changes.items():
        if value is ...:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def segment(part: dict[str, Any] | bytes | str) -> str:
    if isinstance(part, dict):
        return b64url_encode(json.dumps(part, separators=(",", ":")).encode())
    if isinstance(part, bytes):
        return b64url_encode(part)
    return part  # an already-encoded segment, taken verbatim


Forge = Callable[..., str]
