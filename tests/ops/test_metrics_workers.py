"""``/metrics`` of ``taap serve --workers 2`` (Redis): every worker answers for the whole
server (prometheus-client's multi-process files), the mounted guard's verdicts included;
request ids and JSON logs on the way."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from kit.clients import V2_TOKENS, register_client
from kit.metrics import guard_verdicts
from kit.processes import clean_env, start_serve
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

ISSUED = re.compile(
    r'^taap_token_requests_total\{(?=[^}]*endpoint="v2")(?=[^}]*outcome="issued")[^}]*\} (\S+)$',
    re.M,
)


def test_metrics_add_up_across_workers(tmp_path: Path, redis_url: str, rsa_key: PrivateKey) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"], "ops")
    client.http.close()
    node = start_serve(
        tmp_path,
        database_url,
        "--workers",
        "2",
        "--redis-url",
        redis_url,
        name="serve",
        env=clean_env(TAAP_SHUTDOWN_DRAIN="0"),
    )
    try:
        ids: set[str] = set()
        with httpx.Client(base_url=node.url, timeout=10) as http:
            # A new connection each time, until both workers have issued tokens (each worker
            # generates ids with a prefix of its own). On a loaded machine the second worker
            # may still be starting, or the kernel may hand it no connection for a while.
            deadline = time.monotonic() + 30
            while len({i.split("-")[0] for i in ids}) < 2 and time.monotonic() < deadline:
                if len(ids) >= 20:
                    time.sleep(0.05)
                headers = {**client.token_headers(), "Connection": "close"}
                response = http.post(V2_TOKENS, headers=headers)
                assert response.status_code == 200
                ids.add(response.headers["x-request-id"])
            assert len({i.split("-")[0] for i in ids}) == 2
            answered: dict[str, float] = {}
            # A worker counts a request as its response completes, so the last token's count can
            # land a moment after the client saw it: poll until both workers agree (or give up).
            for _ in range(200):
                response = http.get("/metrics", headers={"Connection": "close"})
                worker = response.headers["x-request-id"].split("-")[0]
                answered[worker] = sum(float(v) for v in ISSUED.findall(response.text))
                if len(answered) == 2 and set(answered.values()) == {float(len(ids))}:
                    break
        # Both workers report every token issued, whichever worker issued it.
        assert answered == dict.fromkeys(answered, float(len(ids)))
        assert len(answered) == 2
    finally:
        assert node.stop() == 0
    lines = [json.loads(line) for line in node.log.read_text().splitlines() if line.startswith("{")]
    issued = [line for line in lines if line.get("event") == "token_issued"]
    assert {line["request_id"] for line in issued} == ids


def test_guard_verdicts_add_up_across_workers(
    tmp_path: Path, redis_url: str, rsa_key: PrivateKey
) -> None:
    # --with-sample-apis: each worker's guard counts in the shared multi-process files, so
    # /metrics on either worker reports every verdict, whichever worker judged it.
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"], "ops")
    node = start_serve(
        tmp_path,
        database_url,
        "--workers",
        "2",
        "--redis-url",
        redis_url,
        "--with-sample-apis",
        name="serve",
        env=clean_env(TAAP_SHUTDOWN_DRAIN="0"),
    )
    try:
        access = str(client.tokens(node.url + V2_TOKENS)["access_token"])
        device = node.url + "/iot-connectivity/v1/devices/8901260000000000001"
        with httpx.Client(timeout=10, headers={"Connection": "close"}) as http:
            for _ in range(6):
                call = client.headers("GET", httpx.URL(device).path, access)
                assert http.get(device, headers=call).status_code == 200
            for _ in range(2):
                assert http.post(node.url + "/oauth2/v2/token").status_code == 404
            answered: dict[str, dict[tuple[str, ...], float]] = {}
            deadline = time.monotonic() + 30
            while len(answered) < 2 and time.monotonic() < deadline:
                response = http.get(node.url + "/metrics")
                worker = response.headers["x-request-id"].split("-")[0]
                answered[worker] = guard_verdicts(response.text)
        assert len(answered) == 2
        for verdicts in answered.values():
            assert verdicts == {("accepted", ""): 6.0, ("refused", "not_found"): 2.0}
    finally:
        client.http.close()
        assert node.stop() == 0
