"""JWKS, discovery, health, readiness, OpenAPI and unknown paths (TAAP.md A4, SECURITY.md I4)."""

from __future__ import annotations

from typing import Any

import pytest
from server_kit import BASE, Harness, make_harness

from taap.core import PrivateKey
from taap.errors import UnavailableError
from taap.server.discovery import DISCOVERY_PATHS


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
async def test_discovery(harness: Harness, path: str) -> None:
    async with harness.http() as client:
        r = await client.get(path)
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == f"{BASE}/oauth2/v1"
    assert doc["token_endpoint"] == f"{BASE}/oauth2/v2/tokens"
    assert doc["taap_token_endpoints"] == [f"{BASE}/oauth2/v2/tokens", f"{BASE}/oauth2/v6/tokens"]
    assert doc["jwks_uri"] == f"{BASE}/oauth2/v1/jwks"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    urls = [v for v in doc.values() if isinstance(v, str) and "://" in v]
    assert all(u.startswith(BASE) for u in urls)


async def test_discovery_follows_public_url(rsa_key: PrivateKey, signing_key: PrivateKey) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key, public_url="https://taap.example/")
    async with h.http() as client:
        doc = (await client.get("/.well-known/openid-configuration")).json()
    assert doc["issuer"] == "https://taap.example/oauth2/v1"
    assert doc["jwks_uri"] == "https://taap.example/oauth2/v1/jwks"


async def test_jwks_has_public_keys_only(harness: Harness, signing_key: PrivateKey) -> None:
    async with harness.http() as client:
        r = await client.get("/oauth2/v1/jwks")
    [key] = r.json()["keys"]
    assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}
    assert key["n"] == signing_key.public.jwk["n"]
    assert "max-age" in r.headers["cache-control"]


async def test_health_and_ready(harness: Harness) -> None:
    async with harness.http() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": True,
        "replay_store": True,
        "rate_limiter": True,
        "signing_key": True,
    }


async def test_not_ready_when_the_registry_is_down(harness: Harness) -> None:
    async def down(*args: Any) -> Any:
        raise UnavailableError()

    harness.registry.ping = down  # type: ignore[method-assign]
    async with harness.http() as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error_code"] == "unavailable"
    assert "database" in r.json()["error_description"]
    assert r.headers["retry-after"] == "1"


async def test_jwks_503_when_the_registry_is_down(harness: Harness) -> None:
    async def down(*args: Any) -> Any:
        raise UnavailableError()

    harness.registry.signing_keys = down  # type: ignore[method-assign]
    async with harness.http() as client:
        r = await client.get("/oauth2/v1/jwks")
    assert r.status_code == 503


async def test_unknown_path_and_method(harness: Harness) -> None:
    async with harness.http() as client:
        missing = await client.get("/nope")
        wrong = await client.post("/oauth2/v1/jwks")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found"
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"


async def test_openapi_lists_every_route_and_status(harness: Harness) -> None:
    async with harness.http() as client:
        doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/oauth2/v2/tokens",
        "/oauth2/v6/tokens",
        "/oauth2/v1/jwks",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/oauth2/v1/revoke",
        "/oauth2/v1/introspect",
        "/oauth2/v1/revocations",
        *DISCOVERY_PATHS,
    }
    token = doc["paths"]["/oauth2/v2/tokens"]["post"]["responses"]
    assert set(token) == {
        "200",
        "400",
        "401",
        "403",
        "405",
        "413",
        "415",
        "429",
        "431",
        "500",
        "503",
    }


async def test_lifespan_startup_and_shutdown(harness: Harness) -> None:
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await harness.app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_fallback_app_gets_unknown_paths(
    rsa_key: PrivateKey, signing_key: PrivateKey
) -> None:
    h = await make_harness(rsa_key, signing_key=signing_key)
    seen: list[str] = []

    async def sample(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    h.app.fallback = sample
    async with h.http() as client:
        assert (await client.get("/sms/v1/messages")).status_code == 204
        assert (await client.get("/healthz")).status_code == 200
    assert seen == ["/sms/v1/messages"]


async def test_openapi_references_resolve(harness: Harness) -> None:
    async with harness.http() as client:
        doc = (await client.get("/openapi.json")).json()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    targets = refs(doc)
    assert targets
    for ref in targets:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)
    # every response of every operation is JSON with a schema
    for path in doc["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                assert "application/json" in response["content"]
