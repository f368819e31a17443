"""A guard that has no JWKS yet (a node that just started, under load) makes every request that
arrives during its first fetch wait for that fetch, instead of answering 503 to them: found by
the cluster test when a restarted node met a stream of guarded calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from taap.core import PrivateKey
from taap.resource import JwksKeys

BASE = "http://127.0.0.1:9"  # never dialled: the transport is in-process


async def test_requests_during_the_first_fetch_wait_for_it(rsa_key: PrivateKey) -> None:
    release = asyncio.Event()
    hits: list[str] = []

    async def token_server(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/.well-known/openid-configuration":
            doc: dict[str, Any] = {"issuer": BASE + "/oauth2/v1", "jwks_uri": BASE + "/jwks"}
        else:
            hits.append("jwks")
            await release.wait()  # the JWKS answer is slow: the others arrive meanwhile
            doc = {"keys": [{**rsa_key.public.jwk, "kid": "k1", "alg": "RS256"}]}
        body = json.dumps(doc).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    keys = JwksKeys(BASE, transport=httpx.ASGITransport(app=token_server), clock=lambda: 1000.0)
    first = asyncio.create_task(keys.current())
    while not hits:
        await asyncio.sleep(0)
    others = [asyncio.create_task(keys.current()) for _ in range(5)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert not any(task.done() for task in others)  # waiting, not failed with 503
    release.set()
    results = await asyncio.gather(first, *others)
    assert all(set(result.keys) == {"k1"} for result in results)
    assert keys.fetches == 1
