"""The gateway for ``bench_gateway.py``: static key from ``GUARD_BENCH_JWK``, clock pinned to
``GUARD_BENCH_NOW`` (when the PoPs were built), revocations checked against an empty log, as
``guard_server.py`` does for the guard; Connectivity forwarded to ``GATEWAY_BENCH_UPSTREAM``.
``uvicorn gateway_server:create --factory``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from taap.core import public_key_from_jwk
from taap.core.revocation import RevocationEntry
from taap.gateway import GatewayApp, GatewaySettings
from taap.resource import StaticKeys
from taap.resource.revocations import RevocationWatcher

ISSUER = "http://127.0.0.1/oauth2/v1"


async def no_revocations(after: int) -> list[RevocationEntry]:
    return []


def create() -> GatewayApp:
    jwk = json.loads(Path(os.environ["GUARD_BENCH_JWK"]).read_text())
    now = float(os.environ["GUARD_BENCH_NOW"])
    settings = GatewaySettings(
        token_server="http://127.0.0.1:1",
        upstreams={"connectivity": os.environ["GATEWAY_BENCH_UPSTREAM"]},
        # A shared Redis replay store, as production runs; else the in-process one.
        redis_url=os.environ.get("GATEWAY_BENCH_REDIS") or None,
    )
    return GatewayApp(
        settings,
        keys=StaticKeys({jwk["kid"]: public_key_from_jwk(jwk)}, issuer=ISSUER),
        revocations=RevocationWatcher(no_revocations, clock=lambda: now),
        clock=lambda: now,
    )
