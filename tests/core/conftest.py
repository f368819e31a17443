"""Fixtures for the PoP tests: forge tokens signed with a real key."""

from __future__ import annotations

from typing import Any

import pytest
from pop_forge import Forge, segment

from taap.core import PrivateKey
from taap.core._b64 import b64url_encode


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
        signing_input = f"{segment(header)}.{segment(payload)}"
        if signature is None:
            signature = b64url_encode((key or demo_key).sign_rs256(signing_input.encode()))
        return f"{signing_input}.{signature}"

    return make
