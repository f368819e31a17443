"""A client created while ``taap serve`` runs must be able to get a token on its next request
(TAAP.md A8: registry read cache 0 s): the guard's e2e fixtures rely on it nowhere, but users do."""

from __future__ import annotations

import pytest
from e2e_kit import Stack

from kit.clients import register_client
from taap.core import PrivateKey

pytestmark = pytest.mark.e2e


def test_client_created_while_serving_gets_a_token(stack: Stack, other_key: PrivateKey) -> None:
    first = stack.clients["b"]
    assert first.token_response(stack.token_url).status_code == 200  # the server has read
    late = register_client(stack.database_url, other_key, ("connectivity",), "late")
    try:
        response = late.token_response(stack.token_url)
    finally:
        late.http.close()
    assert response.status_code == 200, response.text
