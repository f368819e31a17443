"""End-to-end fixtures: the token server (``taap serve``) and the guarded sample APIs
(``taap sample-api``) as real processes on loopback ports, over a SQLite registry the test
also opens.

Clients are registered before the token server starts, so each module's fixture says up front
which clients and subscriptions its tests use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_kit import Stack, start_stack

from taap.core import PrivateKey


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: PrivateKey,
    other_key: PrivateKey,
    demo_key: PrivateKey,
) -> Iterator[Stack]:
    wanted = {
        "a": (rsa_key, ("connectivity", "sms-notification")),
        "b": (other_key, ("connectivity",)),
        "sdk": (rsa_key, ("connectivity",)),
        "tmo": (demo_key, ("connectivity",)),
    }
    running = start_stack(tmp_path_factory.mktemp("e2e"), wanted)
    yield running
    running.stop()
