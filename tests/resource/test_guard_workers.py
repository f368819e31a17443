"""A guard served by several worker processes needs a shared replay store: with the in-process
one, each worker would accept a PoP once. The guard knows its worker count when the host says
so through ``WEB_CONCURRENCY`` (uvicorn's and gunicorn's default worker count); ``taap
sample-api`` is one process whatever that variable says, and ``taap serve --workers N`` needs
Redis (tests/server/test_e2e_serve.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kit.processes import start_sample_api
from taap.core import PrivateKey
from taap.core.replay import MemoryReplayStore
from taap.errors import ConfigurationError
from taap.resource.keys import StaticKeys
from taap.resource.sample import create_sample_app
from taap.resource.settings import GuardSettings
from taap.resource.validator import Validator
from taap.stores.redis import RedisReplayStore, connect

UNUSED_REDIS = "redis://127.0.0.1:1/0"  # never contacted: the clients connect lazily


def test_workers_come_from_web_concurrency() -> None:
    assert GuardSettings.from_env({}).workers == 1
    assert GuardSettings.from_env({"WEB_CONCURRENCY": "4"}).workers == 4
    assert GuardSettings.from_env({"WEB_CONCURRENCY": " "}).workers == 1
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ConfigurationError, match="WEB_CONCURRENCY must be"):
            GuardSettings.from_env({"WEB_CONCURRENCY": bad})


def test_several_workers_without_shared_store_refused(rsa_key: PrivateKey) -> None:
    keys = StaticKeys({"k": rsa_key.public})
    settings = GuardSettings.from_env({"WEB_CONCURRENCY": "3"})
    for replay in (None, MemoryReplayStore()):
        with pytest.raises(ConfigurationError) as caught:
            Validator(keys, replay=replay, settings=settings)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("3 worker processes (WEB_CONCURRENCY) need a shared replay")
        assert "TAAP_REDIS_URL" in message
    with pytest.raises(ConfigurationError, match="need a shared replay store"):
        create_sample_app(keys=keys, settings=settings)


async def test_several_workers_with_redis_accepted(rsa_key: PrivateKey) -> None:
    keys = StaticKeys({"k": rsa_key.public})
    settings = GuardSettings(workers=3, redis_url=UNUSED_REDIS)
    client = connect(UNUSED_REDIS)
    try:
        Validator(keys, replay=RedisReplayStore(client), settings=settings)
    finally:
        await client.aclose()
    assert isinstance(
        Validator.for_token_server("http://127.0.0.1:1", settings=settings).replay,
        RedisReplayStore,
    )
    create_sample_app(keys=keys, settings=settings)
    # One process keeps its own store.
    assert isinstance(Validator(keys).replay, MemoryReplayStore)


@pytest.mark.e2e
def test_sample_api_is_one_process_whatever_web_concurrency_says(tmp_path: Path) -> None:
    guard = start_sample_api(tmp_path, "http://127.0.0.1:1", WEB_CONCURRENCY="4")
    try:
        assert httpx.get(guard.url + "/healthz").status_code == 200
    finally:
        guard.stop()
