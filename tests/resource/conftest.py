"""Fixtures for the guard's unit and in-process rings: a token-server key and a caller."""

from __future__ import annotations

import pytest
from resource_kit import Caller, make_token

from taap.core import PrivateKey, generate_private_key


@pytest.fixture(scope="session")
def server_key() -> PrivateKey:
    return generate_private_key(2048)


@pytest.fixture
def caller(server_key: PrivateKey, rsa_key: PrivateKey) -> Caller:
    return Caller(
        rsa_key, make_token(server_key, rsa_key, apis=("connectivity", "sms-notification"))
    )
