"""Helpers for the PoP tests: a default request and good claims over it (no fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.jose import pop_claims

IAT = 1_700_000_000
NOW = IAT + 1
JTI = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"

REQUEST: list[tuple[str, str]] = [
    ("Content-Type", "application/json"),
    ("Authorization", "Bearer UtKV75JJbVAewOrkHMXhLbiQ11SS"),
    ("uri", "/commerce/v1/orders?account=1"),
    ("http-method", "POST"),
    ("body", '{"orderId": 100}'),
]


def good_claims(pairs: list[tuple[str, str]] | None = None, **changes: Any) -> dict[str, Any]:
    """Valid strict claims over ``pairs`` (default REQUEST) issued at IAT; ``changes`` override
    or, with the value ``...``, remove members."""
    return pop_claims(REQUEST if pairs is None else pairs, IAT, JTI, changes)


Forge = Callable[..., str]
