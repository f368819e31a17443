"""The guard passes the core's wording of time and coverage failures to the caller:
``error_description`` says which check failed (A3 steps 4-5); the codes are unchanged."""

from __future__ import annotations

import httpx
from resource_kit import NOW, Caller
from test_middleware import build_app

from taap.core import PrivateKey

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


async def test_guard_says_which_check_failed(server_key: PrivateKey, caller: Caller) -> None:
    transport = httpx.ASGITransport(app=build_app(server_key))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        old = await client.get(DEVICE, headers=caller.headers("GET", DEVICE, now=NOW - 75))
        unsigned = await client.get(
            DEVICE, headers=caller.headers("GET", DEVICE, names=["Authorization", "uri"])
        )
    assert old.status_code == 401
    assert old.json()["error_code"] == "pop_expired"
    assert old.json()["error_description"] == (
        "PoP token expired 15 s ago (exp 1799999985, leeway 10 s)"
    )
    assert unsigned.json()["error_code"] == "pop_ehts_insufficient"
    assert unsigned.json()["error_description"] == (
        "PoP token does not sign the required http-method (ehts must name it)"
    )
