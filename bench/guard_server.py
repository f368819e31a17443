"""The sample app for ``bench_guard.py --wrk``: static key from ``GUARD_BENCH_JWK``, clock pinned
to ``GUARD_BENCH_NOW`` (when the PoPs were built), revocations checked against an empty log.
``uvicorn guard_server:create --factory``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette

from taap.core import MemoryReplayStore, public_key_from_jwk
from taap.core.revocation import RevocationEntry
from taap.resource import StaticKeys, Validator
from taap.resource.revocations import RevocationWatcher
from taap.resource.sample import create_sample_app

ISSUER = "http://127.0.0.1/oauth2/v1"


async def no_revocations(after: int) -> list[RevocationEntry]:
    return []


def create() -> Starlette:
    jwk = json.loads(Path(os.environ["GUARD_BENCH_JWK"]).read_text())
    now = float(os.environ["GUARD_BENCH_NOW"])
    validator = Validator(
        StaticKeys({jwk["kid"]: public_key_from_jwk(jwk)}, issuer=ISSUER),
        replay=MemoryReplayStore(),
        clock=lambda: now,
        revocations=RevocationWatcher(no_revocations, clock=lambda: now),
    )
    return create_sample_app(validator=validator)
