"""Signing-key rotation seen by a running guard: an unknown kid makes it refetch the JWKS, and
tokens of the previous key keep working while the JWKS still lists it (TAAP.md A4, A7)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from e2e_kit import Stack, start_stack

from kit.processes import taap_ok
from kit.wire import jwt_part
from taap.core import PrivateKey, generate_private_key, issue_access_token

pytestmark = pytest.mark.e2e

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def kid_of(token: str) -> str:
    return str(jwt_part(token, 0)["kid"])


@pytest.fixture
def rotating(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Stack]:
    # TAAP_JWKS_MIN_REFRESH=0 on the token server: it signs with a rotated-in key at once (the
    # publish-before-use delay is tested in tests/server and tests/cluster).
    running = start_stack(
        tmp_path_factory.mktemp("rotate"),
        {"a": (rsa_key, ("connectivity",))},
        TAAP_JWKS_MIN_REFRESH="0",
    )
    yield running
    running.stop()


def test_rotation_refreshes_jwks_and_old_tokens_keep_working(rotating: Stack) -> None:
    client = rotating.clients["a"]
    old = str(client.tokens(rotating.token_url)["access_token"])
    assert client.call("GET", rotating.api.url + DEVICE, old).status_code == 200  # JWKS cached

    taap_ok("keys", "rotate", "--database-url", rotating.database_url)
    # The running token server signs with the new key on its next request (TAAP_KEY_REFRESH=0
    # here); the guard keeps running throughout with the JWKS it cached before the rotation.
    new = str(client.tokens(rotating.token_url)["access_token"])
    assert kid_of(new) != kid_of(old)
    jwks = httpx.get(rotating.token.url + "/oauth2/v1/jwks").json()
    assert {kid_of(old), kid_of(new)} <= {k["kid"] for k in jwks["keys"]}

    time.sleep(1.1)  # past the guard's TAAP_JWKS_MIN_REFRESH (1 s in these tests)
    response = client.call("GET", rotating.api.url + DEVICE, new)
    assert response.status_code == 200, response.text  # unknown kid → one refetch → accepted
    assert client.call("GET", rotating.api.url + DEVICE, old).status_code == 200

    # A kid nobody published stays refused (after its one allowed refetch).
    time.sleep(1.1)
    stranger = issue_access_token(
        key=generate_private_key(2048),
        kid="never-published",
        issuer=f"{rotating.token.url}/oauth2/v1",
        client_id=client.client_id,
        apis=["connectivity"],
        cnf_jwk=client.key.public.jwk,
        now=time.time(),
    )
    response = client.call("GET", rotating.api.url + DEVICE, stranger)
    assert (response.status_code, response.json()["error_code"]) == (401, "token_invalid")
