"""SECURITY.md R4 / §4 and A3 step 7: Redis stopped mid-run → the token endpoint and the guard
fail closed (503 ``unavailable`` + ``Retry-After``, no token, no API call served), and both
recover by themselves once Redis is back, without a restart (for fresh PoPs: the restarted,
empty Redis is a loss of the replay state, tests/faults/test_redis_state_loss.py). The same
for a Redis that hangs (SIGSTOP): answers within the client timeout, and no reply of a
timed-out command is ever read as the answer to a later one once it runs again.

The Redis is a private ``redis-server`` this test starts on a free port, so stopping it never
touches the shared one."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from faults_kit import Load, PrivateRedis, audit

from kit.clients import register_client, token_headers
from kit.processes import start_sample_api, start_serve, wait_until
from kit.wire import jwt_part
from taap.core import PrivateKey

pytestmark = [pytest.mark.e2e]

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["error"], body["error_code"]) == ("temporarily_unavailable", "unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert "access_token" not in body
    assert "Traceback" not in response.text


def test_redis_down_fails_closed_then_recovers(
    tmp_path: Path, private_redis: PrivateRedis, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"])
    server = start_serve(tmp_path, database_url, name="serve", TAAP_REDIS_URL=private_redis.url)
    guard = load = None
    try:
        guard = start_sample_api(tmp_path, server.url, name="guard", redis_url=private_redis.url)
        token_url = server.url + "/oauth2/v2/tokens"
        http = client.http

        # Before: both work.
        access = str(client.tokens(token_url)["access_token"])
        assert client.call("GET", guard.url + DEVICE, access).status_code == 200
        issued_before = sum(1 for a in audit(server) if a["event"] == "token_issued")
        assert issued_before == 1

        # Traffic runs through the whole outage: only 200 or 503, and nothing lost.
        load = Load(token_url, client).start()
        wait_until(lambda: len(load.answers) >= 5, 10, "load before the outage")
        private_redis.stop()

        # Token endpoint: 503 for every attempt, and readiness says why.
        kept_pop = token_headers(client.client_id, client.secret, client.key)
        for _ in range(3):
            _assert_unavailable(http.post(token_url, headers=kept_pop))
        fresh = token_headers(client.client_id, client.secret, client.key)
        _assert_unavailable(http.post(token_url, headers=fresh))
        ready = http.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert "replay_store" in ready.json()["error_description"]

        # Guard: the access token and PoP are fine, the replay store is not → 503, not 200.
        kept_call = client.headers("GET", DEVICE, access)
        _assert_unavailable(http.get(guard.url + DEVICE, headers=kept_call))
        _assert_unavailable(client.call("GET", guard.url + DEVICE, access))
        assert server.proc.poll() is None
        assert guard.proc.poll() is None

        # No token was issued while Redis was down.
        during = len(load.answers)
        time.sleep(0.5)
        assert load.answers[during:]
        assert set(load.answers[during:]) == {(503, "unavailable")}
        refused = [a for a in audit(server) if a["event"] == "token_rejected"]
        assert {a["error_code"] for a in refused} == {"unavailable"}

        private_redis.start()  # same port, empty (no persistence): a loss of its state

        # Recovery without a restart: the same processes answer 200 again, to PoPs issued from
        # the new epoch + leeway (10 s) on.
        def token_ok() -> bool:
            fresh = token_headers(client.client_id, client.secret, client.key)
            return http.post(token_url, headers=fresh).status_code == 200

        wait_until(token_ok, 30, "token endpoint after Redis came back")
        wait_until(lambda: load.answers[-1] == (200, None), 30, "load after Redis came back")
        load.stop()
        # Reconciliation (SECURITY.md §2 invariant 2): every 200 the load saw is one audited
        # issuance with its own jti, and nothing but 200 and 503 was ever answered.
        assert set(load.answers) == {(200, None), (503, "unavailable")}
        issued = [a for a in audit(server) if a["event"] == "token_issued"]
        load_jtis = {jwt_part(token, 1)["jti"] for token in load.tokens}
        assert len(load_jtis) == len(load.tokens)
        assert load_jtis <= {a["token_jti"] for a in issued}
        assert len(issued) == issued_before + len(load.tokens) + 1  # + token_ok's success
        wait_until(
            lambda: client.call("GET", guard.url + DEVICE, access).status_code == 200,
            15,
            "guard after Redis came back",
        )
        assert http.get(server.url + "/readyz").status_code == 200
        # The PoPs made during the outage were issued before the epoch of the restarted, empty
        # Redis: it cannot tell them from PoPs used before the loss, so they stay refused with
        # 503 and Retry-After (never 200) until they have expired. Fresh ones pass once each.
        _assert_unavailable(http.post(token_url, headers=kept_pop))
        _assert_unavailable(http.get(guard.url + DEVICE, headers=kept_call))
        fresh_pop = token_headers(client.client_id, client.secret, client.key)
        assert http.post(token_url, headers=fresh_pop).status_code == 200
        again = http.post(token_url, headers=fresh_pop)
        assert (again.status_code, again.json()["error_code"]) == (401, "pop_replayed")
        fresh_call = client.headers("GET", DEVICE, access)
        assert http.get(guard.url + DEVICE, headers=fresh_call).status_code == 200
        again = http.get(guard.url + DEVICE, headers=fresh_call)
        assert (again.status_code, again.json()["error_code"]) == (401, "pop_replayed")
        assert server.proc.poll() is None
        assert guard.proc.poll() is None
    finally:
        if load is not None:
            load.stop()
        client.http.close()
        if guard is not None:
            guard.stop()
        server.stop()


def test_redis_hanging_fails_closed_fast_then_recovers(
    tmp_path: Path, private_redis: PrivateRedis, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"])
    server = start_serve(tmp_path, database_url, name="serve", TAAP_REDIS_URL=private_redis.url)
    guard = None
    try:
        guard = start_sample_api(tmp_path, server.url, name="guard", redis_url=private_redis.url)
        token_url = server.url + "/oauth2/v2/tokens"
        http = client.http
        access = str(client.tokens(token_url)["access_token"])
        assert client.call("GET", guard.url + DEVICE, access).status_code == 200

        private_redis.pause()
        try:
            kept_pop = token_headers(client.client_id, client.secret, client.key)
            kept_call = client.headers("GET", DEVICE, access)
            started = time.monotonic()
            _assert_unavailable(http.post(token_url, headers=kept_pop))
            _assert_unavailable(http.get(guard.url + DEVICE, headers=kept_call))
            # The Redis client's 1 s socket timeout bounds each answer, so a hung Redis
            # cannot hang the servers.
            assert time.monotonic() - started < 8
        finally:
            private_redis.resume()

        # A command that timed out was still delivered: Redis runs it when it wakes. So the
        # guard's SET NX of kept_call may land after its 503 (fail closed: the jti is burned,
        # never freed by a compensating DEL that could race a real replay). What must hold:
        # each PoP sent while Redis hung succeeds at most once in total...
        wait_until(lambda: http.get(server.url + "/readyz").status_code == 200, 15, "readiness")
        for url, headers in ((token_url, kept_pop), (guard.url + DEVICE, kept_call)):
            method = "POST" if url == token_url else "GET"
            answers = [http.request(method, url, headers=headers) for _ in range(3)]
            codes = [(r.status_code, r.json().get("error_code")) for r in answers]
            assert codes.count((401, "pop_replayed")) >= 2, codes
            assert set(codes) <= {(200, None), (401, "pop_replayed")}, codes
        # ... and no reply left behind by a timed-out command is read as the answer to a later
        # one: every fresh PoP passes once, then is refused as a replay, at both servers.
        for _ in range(5):
            fresh = token_headers(client.client_id, client.secret, client.key)
            assert http.post(token_url, headers=fresh).status_code == 200
            replay = http.post(token_url, headers=fresh)
            assert (replay.status_code, replay.json()["error_code"]) == (401, "pop_replayed")
            call = client.headers("GET", DEVICE, access)
            assert http.get(guard.url + DEVICE, headers=call).status_code == 200
            replay = http.get(guard.url + DEVICE, headers=call)
            assert (replay.status_code, replay.json()["error_code"]) == (401, "pop_replayed")
    finally:
        client.http.close()
        if guard is not None:
            guard.stop()
        server.stop()
