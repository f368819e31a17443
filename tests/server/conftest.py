"""Fixtures for the token-server tests (in-process ring over MemoryRegistry)."""

from __future__ import annotations

import pytest
from server_kit import Harness, make_harness

from taap.core import PrivateKey, generate_private_key


@pytest.fixture(scope="session")
def signing_key() -> PrivateKey:
    return generate_private_key(2048)


@pytest.fixture
async def harness(rsa_key: PrivateKey, signing_key: PrivateKey) -> Harness:
    return await make_harness(rsa_key, signing_key=signing_key)
