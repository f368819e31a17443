"""The Redis replay store as tests meet it: a database a test suite starts on is new to the
store, which reads a missing epoch marker as a loss (docs/deploy.md, "Replay store epoch") and
refuses PoPs issued in the next leeway seconds. Suites about something else mark it as serving
since long ago; the tests of the epoch rule itself never do."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from taap.stores.redis import DEFAULT_PREFIX, RedisReplayStore, connect

__all__ = ["adopt_redis"]


def adopt_redis(url: str, prefix: str = DEFAULT_PREFIX) -> None:
    """Write the epoch marker of the store at ``url``/``prefix`` with epoch 0 (callable from
    sync code, also while an event loop runs in this thread)."""

    async def adopt() -> None:
        client = connect(url)
        try:
            await RedisReplayStore(client, prefix=prefix).adopt(epoch=0)
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, adopt()).result()
