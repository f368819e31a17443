"""docs/guard.md's examples run as written against a sandbox token server (real sockets).

FastAPI is a dev dependency for this test only; taap itself does not need it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taap.client import ClientCredentials, PopAuth, Secret, TokenClient
from taap.core import PrivateKey
from taap.sandbox import Sandbox, running_sandbox
from taap.server.registry.port import ApiProduct

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "guard.md"


def example(name: str, token_server: str) -> dict[str, Any]:
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no {name} example in {DOC}"
    namespace: dict[str, Any] = {"__name__": f"guard_doc_{name}"}
    code = match.group(1).replace("https://auth.example.com", token_server)
    exec(compile(code, f"docs/guard.md:{name}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as running:
        product = ApiProduct(id="orders", name="Orders", token_server="v2", base_path="/orders/v1")
        running.run(running.registry.create_product(product))
        yield running


async def check(app: Any, sandbox: Sandbox, key: PrivateKey) -> None:
    record, secret = sandbox.create_client(name="doc", keys=[key.public], apis=["orders"])
    credentials = ClientCredentials(
        client_id=record.client_id, client_secret=Secret(secret), key=key
    )
    tokens = TokenClient(sandbox.token_url + "/oauth2/v2/tokens", credentials)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test", auth=PopAuth(tokens)
        ) as http:
            created = await http.post("/orders/v1/orders", json={"sku": "A-1", "qty": 2})
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as bare:
            refused = await bare.post("/orders/v1/orders", json={"sku": "A-1"})
            health = await bare.get("/healthz")
            mistyped = await bare.post("/orders/v1/order", json={"sku": "A-1"})
    finally:
        await tokens.aclose()
    assert created.status_code == 201, created.text
    assert created.json() == {"client_id": record.client_id, "order": {"sku": "A-1", "qty": 2}}
    assert (refused.status_code, refused.json()["error_code"]) == (401, "token_invalid")
    assert health.json() == {"status": "ok"}
    # The middleware knows the app's routes (docs/guard.md, "Unknown paths"): 404, not 401.
    assert mistyped.status_code == 404


async def test_starlette_example(sandbox: Sandbox, rsa_key: PrivateKey) -> None:
    await check(example("starlette", sandbox.token_url)["app"], sandbox, rsa_key)


async def test_fastapi_example(sandbox: Sandbox, other_key: PrivateKey) -> None:
    await check(example("fastapi", sandbox.token_url)["app"], sandbox, other_key)
