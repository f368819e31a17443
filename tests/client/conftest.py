"""Fixtures of the client tests: a client key pair, credentials, the fake server, a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kit.loopback import serve
from taap.client import ClientCredentials, Secret
from taap.core import PrivateKey

from ._fake import FakeTaap
from ._stack import Stack, build_stack

CLIENT_ID = "taap-testclient0000000000000000000000"
SECRET = "s3cr3t-Value_that-must-never-leak"


class FakeClock:
    """A settable clock; starts at the real time so PoPs verify on an honest server clock."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def credentials(rsa_key: PrivateKey) -> ClientCredentials:
    return ClientCredentials(client_id=CLIENT_ID, client_secret=Secret(SECRET), key=rsa_key)


@pytest.fixture
def fake(rsa_key: PrivateKey, other_key: PrivateKey) -> FakeTaap:
    return FakeTaap(
        client_id=CLIENT_ID, secret=SECRET, client_key=rsa_key.public, server_key=other_key
    )


@pytest.fixture
def fake_url(fake: FakeTaap) -> Iterator[str]:
    """The fake served by a real uvicorn on loopback (for sync clients, threads, curl)."""
    with serve(fake.app()) as url:
        yield url


@pytest.fixture
def stack(rsa_key: PrivateKey, other_key: PrivateKey) -> Stack:
    """The real token server and sample APIs, in-process (base URL http://taap.test)."""
    return build_stack(rsa_key, other_key, "http://taap.test")


@pytest.fixture
def stack_credentials(stack: Stack, rsa_key: PrivateKey) -> ClientCredentials:
    return ClientCredentials(
        client_id=stack.client_id, client_secret=Secret(stack.secret), key=rsa_key
    )
