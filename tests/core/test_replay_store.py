"""The bounded in-process replay store: atomic, evicts only expired entries, fails closed."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

from taap.core.replay import MemoryReplayStore, ReplayStore, replay_key
from taap.errors import UnavailableError


def test_check_and_record_is_one_call() -> None:
    store = MemoryReplayStore(capacity=10)
    assert store.record_sync("c1", "j1", until=100, now=0) is True
    assert store.record_sync("c1", "j1", until=100, now=1) is False
    assert store.record_sync("c2", "j1", until=100, now=1) is True  # jti scoped per client
    assert store.record_sync("c1", "j2", until=100, now=1) is True
    assert len(store) == 3
    assert store.contains("c1", "j1", now=2)
    assert not store.contains("c1", "j3", now=2)


async def test_async_interface() -> None:
    store: ReplayStore = MemoryReplayStore(capacity=2)
    assert await store.ping() is True
    assert await store.record("c", "j", until=10, now=0) is True
    assert await store.record("c", "j", until=10, now=5) is False


def test_entry_is_kept_until_its_expiry_then_evicted() -> None:
    store = MemoryReplayStore(capacity=10)
    store.record_sync("c", "j", until=130, now=0)
    assert store.record_sync("c", "j", until=200, now=129.9) is False
    assert store.contains("c", "j", now=129.9)
    # At `until` the entry is gone: the jti is usable again (its PoP has long expired anyway).
    assert store.record_sync("c", "other", until=300, now=130) is True
    assert len(store) == 1
    assert not store.contains("c", "j", now=130)
    assert store.record_sync("c", "j", until=400, now=131) is True


def test_bound_holds_under_a_flood() -> None:
    store = MemoryReplayStore(capacity=100)
    now = 0.0
    for i in range(20_000):
        now += 0.01  # 100 records/s, each live for 0.5 s: at most ~50 live at once
        assert store.record_sync("c", f"j{i}", until=now + 0.5, now=now)
        assert len(store) <= 100
    assert len(store) <= 51
    assert len(store._heap) == len(store)  # the heap cannot outgrow the live set


def test_full_of_live_entries_fails_closed_and_keeps_them() -> None:
    store = MemoryReplayStore(capacity=50)
    for i in range(50):
        store.record_sync("c", f"j{i}", until=1000 + i, now=0)
    with pytest.raises(UnavailableError) as info:
        store.record_sync("c", "new", until=2000, now=1)
    assert info.value.error_code == "unavailable"
    assert info.value.status_code == 503
    # nothing live was evicted to make room, and the refused jti was not recorded
    assert all(store.contains("c", f"j{i}", now=1) for i in range(50))
    assert not store.contains("c", "new", now=1)
    # a replay is still detected while full (checked before the capacity)
    assert store.record_sync("c", "j7", until=2000, now=1) is False
    # once one entry expires there is room again
    assert store.record_sync("c", "new", until=2000, now=1000) is True
    assert not store.contains("c", "j0", now=1000)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        MemoryReplayStore(capacity=0)


def test_concurrent_records_accept_each_jti_exactly_once() -> None:
    store = MemoryReplayStore(capacity=10_000)
    jtis = [f"j{i}" for i in range(2_000)]
    wins: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        mine = sum(store.record_sync("c", j, until=100, now=0) for j in jtis)
        with lock:
            wins.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == len(jtis)
    assert len(store) == len(jtis)


def test_replay_key_keeps_pairs_distinct() -> None:
    assert replay_key("a\x00b", "c") != replay_key("a", "b\x00c")
    assert replay_key("ab", "c") != replay_key("a", "bc")
    assert len(replay_key("c", "j" * 128)) == 16
    # text that is not valid Unicode must not crash the store
    assert replay_key("c", "\ud800") != replay_key("c", "\ud801")


def test_memory_per_entry_matches_the_documented_bound() -> None:
    # The module docstring states ~190 B per entry; 256 B per entry is the hard ceiling we
    # promise in docs/pop.md (500,000 entries < 128 MB).
    count = 50_000
    store = MemoryReplayStore(capacity=count)
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(count):
            store.record_sync("client", f"0f1e2d3c-4b5a-4978-8796-{i:012d}", until=1e6 + i, now=0)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == count
    assert current / count < 256
