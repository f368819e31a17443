"""Fixtures for the PoP tests: forge tokens signed with a real key."""

from __future__ import annotations

from typing import Any

import pytest
from pop_forge import Forge

from kit.jose import forge as forge_jws
from taap.core import PrivateKey


@pytest.fixture(scope="session")
def forge(demo_key: PrivateKey) -> Forge:
    """``forge(header, payload, key=demo_key, signature=None)``: a compact token whose
    signature is a real RS256 signature over exactly the given segments (unless given)."""

    def make(
        header: dict[str, Any] | bytes | str,
        payload: dict[str, Any] | bytes | str,
        *,
        key: PrivateKey | None = None,
        signature: str | None = None,
    ) -> str:
        return forge_jws(header, payload, key or demo_key, signature=signature)

    return make
