"""Two guard processes sharing the Redis replay store: a PoP used at one is burned at both."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from e2e_kit import Stack, start_stack

from kit.processes import start_sample_api
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, rsa_key: PrivateKey
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("redis")
    running = start_stack(folder, {"a": (rsa_key, ("connectivity",))}, TAAP_REDIS_URL=redis_url)
    try:
        running.extra = [
            start_sample_api(folder, running.token.url, name="guard-1", redis_url=redis_url),
            start_sample_api(folder, running.token.url, name="guard-2", redis_url=redis_url),
        ]
    except BaseException:
        running.stop()
        raise
    yield running
    running.stop()


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["1-then-2", "2-then-1"])
def test_pop_burned_on_every_guard(shared: Stack, order: tuple[int, int]) -> None:
    client = shared.clients["a"]
    access = str(client.tokens(shared.token_url)["access_token"])
    headers = client.headers("GET", DEVICE, access)
    first, second = (shared.extra[i].url + DEVICE for i in order)
    assert httpx.get(first, headers=headers).status_code == 200
    again = httpx.get(second, headers=headers)
    assert (again.status_code, again.json()["error_code"]) == (401, "pop_replayed")


def test_fresh_pops_pass_on_both(shared: Stack) -> None:
    client = shared.clients["a"]
    access = str(client.tokens(shared.token_url)["access_token"])
    for guard in shared.extra:
        response = client.call("GET", guard.url + DEVICE, access)
        assert response.status_code == 200, response.text
