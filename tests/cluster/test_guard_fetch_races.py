"""Requests that arrive while another request's JWKS fetch is under way wait for its result.

Both races were found by the cluster test (tests/cluster/test_two_nodes.py):
- a node that just started, under load, answered 503 "no JWKS yet" to every guarded call that
  arrived during its first fetch;
- after a key rotation, the calls carrying the new kid that arrived while the first of them was
  refetching the JWKS were refused as "unknown kid" (the refetch is rate-limited, so they got
  the old snapshot instead of waiting for the fetch in progress).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

import httpx

from taap.core import PrivateKey
from taap.resource import JwksKeys, KeySet

BASE = "http://127.0.0.1:9"  # never dialled: the transport is in-process


class SlowTokenServer:
    """Discovery and JWKS; a JWKS answer waits for ``release`` while ``hold`` is set."""

    def __init__(self, keys: dict[str, PrivateKey]) -> None:
        self.keys = keys
        self.release = asyncio.Event()
        self.hold = False
        self.fetching = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/.well-known/openid-configuration":
            doc: dict[str, Any] = {"issuer": BASE + "/oauth2/v1", "jwks_uri": BASE + "/jwks"}
        else:
            if self.hold:
                self.fetching.set()
                await self.release.wait()
            doc = {"keys": [{**k.public.jwk, "kid": kid} for kid, k in self.keys.items()]}
        body = json.dumps(doc).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _race(
    server: SlowTokenServer, first: Awaitable[KeySet], call: Any, others: int = 5
) -> list[KeySet]:
    """Start ``first`` (its fetch blocks), then ``others`` calls; release; every result."""
    server.hold = True
    leader = asyncio.ensure_future(first)
    await server.fetching.wait()
    followers = [asyncio.ensure_future(call()) for _ in range(others)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert not any(task.done() for task in followers)  # waiting, not answered from the old state
    server.release.set()
    return list(await asyncio.gather(leader, *followers))


def _provider(server: SlowTokenServer, now: list[float]) -> JwksKeys:
    return JwksKeys(
        BASE,
        min_refresh=30,
        transport=httpx.ASGITransport(app=server),
        clock=lambda: now[0],  # moved by hand: during a race only the fetch in progress helps
    )


async def test_requests_during_the_first_fetch_wait_for_it(rsa_key: PrivateKey) -> None:
    server = SlowTokenServer({"k1": rsa_key})
    keys = _provider(server, [1000.0])
    results = await _race(server, keys.current(), keys.current)
    assert all(set(result.keys) == {"k1"} for result in results)
    assert keys.fetches == 1


async def test_unknown_kid_refreshes_in_flight_are_joined(
    rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    server = SlowTokenServer({"k1": rsa_key})
    now = [1000.0]
    keys = _provider(server, now)
    assert set((await keys.current()).keys) == {"k1"}
    server.keys["k2"] = other_key  # rotated in; calls now carry k2
    now[0] += 30  # the first k2 call may refetch; the others arrive during its fetch
    results = await _race(server, keys.refresh(), keys.refresh)
    assert all(set(result.keys) == {"k1", "k2"} for result in results)
    assert keys.fetches == 2
