"""A Redis that loses its state must not accept again a PoP used before the loss (A3 step 7,
the store epoch; SECURITY.md R4): FLUSHALL, a restart without persistence, a restart from a
snapshot that missed the last writes, and a failover to a replica that missed them.

Private ``redis-server`` processes on free ports (``--save ''``), so flushing, killing and
promoting them never touches the shared Redis. The store-level tests inject the clock; the
end-to-end one runs ``taap serve`` and ``taap sample-api`` with a 1 s leeway so a fresh PoP
passes within about two seconds of a loss."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis
from faults_kit import PrivateRedis

from kit.clients import register_client, token_headers
from kit.processes import Service, start_sample_api, start_serve, wait_until
from taap.core import PrivateKey
from taap.errors import UnavailableError
from taap.stores.redis import RedisReplayStore, connect

pytestmark = [pytest.mark.e2e]

NOW = 1_800_000_000.0
IAT = int(NOW)
DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"
LOST = "the replay store lost its state; retry with a new PoP"


@pytest.fixture
async def store(private_redis: PrivateRedis) -> AsyncIterator[RedisReplayStore]:
    client = connect(private_redis.url)
    yield RedisReplayStore(client)
    await client.aclose()


async def _outcome(store: RedisReplayStore, jti: str, *, now: float, iat: int = IAT) -> str:
    """``recorded``, ``seen`` or ``refused <retry-after>``; a connection that a restart broke
    is retried (the pool reconnects), as the client's next request would be."""
    for _ in range(20):
        try:
            fresh = await store.record("c", jti, until=now + 70, now=now, iat=iat)
        except UnavailableError as exc:
            if exc.description == LOST:
                return f"refused {exc.retry_after}"
            await asyncio.sleep(0.1)  # a broken connection: a 503 the client retries
            continue
        return "recorded" if fresh else "seen"
    raise AssertionError("the store never answered")


async def test_flushall_refuses_pops_used_before(
    private_redis: PrivateRedis, store: RedisReplayStore
) -> None:
    assert await _outcome(store, "used", now=NOW) == "recorded"
    redis.Redis.from_url(private_redis.url).flushall()
    # Seconds later the PoP would still pass every time check: without the epoch rule the
    # empty store would record it again and the replay would be served.
    assert await _outcome(store, "used", now=NOW + 5) == "refused 10"  # epoch NOW + 5
    assert await _outcome(store, "used", now=NOW + 14.5) == "refused 1"
    # A fresh PoP (iat >= epoch + leeway) passes, once.
    assert await _outcome(store, "new", now=NOW + 15, iat=IAT + 15) == "recorded"
    assert await _outcome(store, "new", now=NOW + 16, iat=IAT + 15) == "seen"
    assert await store.epoch() == IAT + 5


async def test_restart_without_persistence_refuses_pops_used_before(
    private_redis: PrivateRedis, store: RedisReplayStore
) -> None:
    assert await _outcome(store, "used", now=NOW) == "recorded"
    private_redis.stop()
    private_redis.start()  # same port, empty
    assert await _outcome(store, "used", now=NOW + 2) == "refused 10"
    assert await _outcome(store, "new", now=NOW + 12, iat=IAT + 12) == "recorded"


async def test_restart_from_a_snapshot_that_missed_writes(
    private_redis: PrivateRedis, store: RedisReplayStore
) -> None:
    """The snapshot brings the marker back, so only the identity (a new run_id) shows that
    the records written after it are gone."""
    assert await _outcome(store, "saved", now=NOW) == "recorded"
    sync = redis.Redis.from_url(private_redis.url)
    assert sync.save()
    assert await _outcome(store, "unsaved", now=NOW + 1) == "recorded"
    private_redis.stop()  # no save on shutdown (--save '')
    private_redis.start()  # loads the snapshot: the marker and "saved", not "unsaved"
    sync = redis.Redis.from_url(private_redis.url)
    assert sync.exists(store.key("c", "saved")) == 1
    assert sync.exists(store.key("c", "unsaved")) == 0
    assert sync.hget(store.marker, "epoch") == b"0"  # the old marker is back
    assert await _outcome(store, "unsaved", now=NOW + 3) == "refused 10"
    assert await store.epoch() == IAT + 3
    # Within the window the store vouches for no PoP issued before the loss, kept or not;
    # after it, the kept record answers as before (such a PoP would long have expired).
    assert await _outcome(store, "saved", now=NOW + 3) == "refused 10"
    assert await _outcome(store, "saved", now=NOW + 133) == "seen"


async def test_failover_to_a_replica_that_missed_writes(
    tmp_path: Path, private_redis: PrivateRedis, store: RedisReplayStore
) -> None:
    folder = tmp_path / "replica"
    folder.mkdir()
    primary = redis.Redis.from_url(private_redis.url)
    primary.config_set("repl-diskless-sync-delay", 0)  # the first sync at once, not after 5 s
    replica = PrivateRedis.create(folder)
    replica.start("--replicaof", "127.0.0.1", str(private_redis.port))
    try:
        linked = redis.Redis.from_url(replica.url)
        wait_until(
            lambda: linked.info("replication").get("master_link_status") == "up",
            30,
            "the replica's first sync",
        )
        assert await _outcome(store, "replicated", now=NOW) == "recorded"
        wait_until(
            lambda: linked.exists(store.key("c", "replicated")) == 1, 30, "the record replicated"
        )
        # Replication is asynchronous: the replica is promoted while the primary still takes
        # a write it will never pass on, then the primary goes away.
        promoted = redis.Redis.from_url(replica.url)
        promoted.execute_command("REPLICAOF", "NO", "ONE")
        assert await _outcome(store, "missed", now=NOW + 1) == "recorded"
        private_redis.stop()
        # The replica holds the primary's marker: a marker check alone would see no loss.
        assert promoted.hget(store.marker, "epoch") == b"0"
        assert promoted.exists(store.key("c", "missed")) == 0
        client = connect(replica.url)
        try:
            moved = RedisReplayStore(client)
            assert await _outcome(moved, "missed", now=NOW + 4) == "refused 10"
            assert await _outcome(moved, "replicated", now=NOW + 4) == "refused 10"
            assert await _outcome(moved, "replicated", now=NOW + 134) == "seen"
            assert await _outcome(moved, "new", now=NOW + 14, iat=IAT + 14) == "recorded"
            # This process's own earlier replication history after a promotion (a primary that
            # failed over and back) is a loss too, though the run_id is the same.
            run_id = promoted.info("server")["run_id"]
            promoted.hset(store.marker, "identity", f"{run_id}:{'1' * 40}")
            assert await _outcome(moved, "new-2", now=NOW + 20, iat=IAT + 20) == "refused 10"
        finally:
            await client.aclose()
    finally:
        replica.stop()


async def test_first_replica_is_not_a_loss(
    tmp_path: Path, private_redis: PrivateRedis, store: RedisReplayStore
) -> None:
    """Redis gives itself a new replication id when its first replica attaches, with no
    predecessor (``master_replid2`` zeros): the same process, nothing lost, no epoch."""
    assert await _outcome(store, "before", now=NOW) == "recorded"
    primary = redis.Redis.from_url(private_redis.url)
    replid = primary.info("replication")["master_replid"]
    folder = tmp_path / "replica"
    folder.mkdir()
    replica = PrivateRedis.create(folder)
    replica.start("--replicaof", "127.0.0.1", str(private_redis.port))
    try:
        wait_until(
            lambda: primary.info("replication")["master_replid"] != replid, 10, "a new replid"
        )
        assert await _outcome(store, "after", now=NOW + 1) == "recorded"
        assert await _outcome(store, "before", now=NOW + 1) == "seen"
        assert await store.epoch() == 0
        identity = primary.hget(store.marker, "identity")
        assert identity is not None
        assert identity.decode().endswith(primary.info("replication")["master_replid"])
    finally:
        replica.stop()


# -- end to end: taap serve and taap sample-api on one Redis ------------------------------
def _refused(response: httpx.Response) -> int:
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["error"], body["error_code"]) == ("temporarily_unavailable", "unavailable")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 2  # leeway 1: seconds until epoch + 1
    return retry_after


def _losses(*services: Service) -> int:
    return sum(s.log.read_text().count("replay store lost its state") for s in services)


def _epochs_counted(*services: Service) -> float:
    total = 0.0
    for service in services:
        text = httpx.get(service.url + "/metrics").text
        for value in re.findall(r"^taap_replay_store_epochs_total\{[^}]*\} (\S+)$", text, re.M):
            total += float(value)
    return total


def test_flush_and_restart_refuse_used_pops_end_to_end(
    tmp_path: Path, private_redis: PrivateRedis, rsa_key: PrivateKey
) -> None:
    database_url = f"sqlite:///{tmp_path / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity"])
    settings = {"TAAP_LEEWAY": "1"}
    server = start_serve(tmp_path, database_url, TAAP_REDIS_URL=private_redis.url, **settings)
    guard: Service | None = None
    try:
        guard = start_sample_api(tmp_path, server.url, redis_url=private_redis.url, **settings)
        token_url, http = server.url + "/oauth2/v2/tokens", client.http

        def token_ok() -> bool:
            fresh = token_headers(client.client_id, client.secret, client.key)
            return http.post(token_url, headers=fresh).status_code == 200

        used = [token_headers(client.client_id, client.secret, client.key)]
        answer = http.post(token_url, headers=used[0])
        assert answer.status_code == 200, answer.text
        access = answer.json()["access_token"]
        calls = [client.headers("GET", DEVICE, access)]
        assert http.get(guard.url + DEVICE, headers=calls[0]).status_code == 200

        for lose, count in (
            (lambda: redis.Redis.from_url(private_redis.url).flushall(), 1),
            (lambda: (private_redis.stop(), private_redis.start()), 2),
        ):
            lose()
            # Every PoP used so far: 503 + Retry-After at both, never 200.
            for pop in used:
                _refused(http.post(token_url, headers=pop))
            for call in calls:
                _refused(http.get(guard.url + DEVICE, headers=call))
            # Fresh PoPs pass once epoch + leeway is reached, at both.
            wait_until(token_ok, 10, "a fresh PoP at the token server")
            fresh_call = client.headers("GET", DEVICE, access)
            assert http.get(guard.url + DEVICE, headers=fresh_call).status_code == 200
            used.append(token_headers(client.client_id, client.secret, client.key))
            assert http.post(token_url, headers=used[-1]).status_code == 200
            calls.append(fresh_call)
            # One loss: one warning, one count, whichever process found it.
            assert _losses(server, guard) == count
            assert _epochs_counted(server, guard) == count
        # The PoPs used between the two losses are still refused after both, not served.
        for pop in used[:-1]:
            assert http.post(token_url, headers=pop).status_code == 503
        assert http.get(guard.url + DEVICE, headers=calls[-1]).status_code == 401
        assert server.proc.poll() is None
        assert guard.proc.poll() is None
    finally:
        client.http.close()
        if guard is not None:
            guard.stop()
        server.stop()
