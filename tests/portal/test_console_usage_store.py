"""The usage counters behind the Usage page: two recorders (two nodes) add to the same rows
of a real SQLite file and a real PostgreSQL database; the recorder never raises on the
request path and bounds its memory; the page's table and chart add the rows up per period."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import psycopg
import pytest

from kit.postgres import drop_database
from taap.portal.console.usage import PERIODS, chart, summarise
from taap.server.registry.database import parse_database_url
from taap.server.registry.sql import open_runner, upgrade_database
from taap.server.usage.recorder import UsageRecorder
from taap.server.usage.store import Count, SqlUsage

NOW = 1_800_000_000.0
MINUTE = int(NOW // 60)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, SQLite or a throw-away one beside the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/usage.db"
        return
    base = parse_database_url(request.getfixturevalue("postgres_url")).url
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"taap_usage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(admin, name)


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[SqlUsage, SqlUsage]]:
    await upgrade_database(database)
    one, two = SqlUsage(open_runner(database)), SqlUsage(open_runner(database))
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_two_nodes_add_to_the_same_rows(stores: tuple[SqlUsage, SqlUsage]) -> None:
    first, second = (UsageRecorder(s, clock=lambda: NOW) for s in stores)
    for _ in range(3):
        first.count("call_refused", "client-a", "pop_replayed", NOW)
    second.count("call_refused", "client-a", "pop_replayed", NOW + 1)
    second.count("token", "client-a", None, NOW)
    second.count("token", "client-b", None, NOW)
    second.count("call", None, None, NOW)  # no client known: not counted
    await asyncio.gather(first.flush(), second.flush())
    first.count("call_refused", "client-a", "pop_replayed", NOW + 61)
    await first.flush()

    rows = await stores[0].counts("client-a", MINUTE)
    found = {(r.kind, r.error_code, r.minute): r.count for r in rows}
    assert found == {
        ("call_refused", "pop_replayed", MINUTE): 4,
        ("call_refused", "pop_replayed", MINUTE + 1): 1,
        ("token", "", MINUTE): 1,
    }
    assert (first.failures, second.failures) == (0, 0)
    assert await stores[1].counts("client-a", MINUTE + 2) == []

    await stores[1].prune(MINUTE + 1)
    assert [r.minute for r in await stores[0].counts("client-a", 0)] == [MINUTE + 1]


async def test_the_background_task_writes_within_its_interval(
    stores: tuple[SqlUsage, SqlUsage],
) -> None:
    recorder = UsageRecorder(stores[0], interval=0.05)
    recorder.count("token", "client-c", None, NOW)
    for _ in range(100):
        if await stores[1].counts("client-c", 0):
            break
        await asyncio.sleep(0.05)
    assert [r.count for r in await stores[1].counts("client-c", 0)] == [1]
    recorder.count("token", "client-c", None, NOW)
    await recorder.close()  # writes what is left
    assert [r.count for r in await stores[1].counts("client-c", 0)] == [2]
    recorder.count("token", "client-c", None, NOW)  # closed: ignored
    assert recorder.written == 2


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    async def add(self, rows: Iterable[Count]) -> None:
        self.calls += 1
        raise OSError("database gone")

    async def prune(self, before_minute: int) -> None:
        raise OSError("database gone")


async def test_a_failing_write_is_counted_never_raised() -> None:
    writer = Failing()
    lost: list[tuple[str, int]] = []
    recorder = UsageRecorder(writer, max_pending=2, on_lost=lambda r, n: lost.append((r, n)))
    recorder.count("token", "a", None, NOW)
    recorder.count("token", "b", None, NOW)
    recorder.count("token", "c", None, NOW)  # a third distinct key: over the cap
    recorder.count("token", "a", None, NOW)  # an existing key still counts
    assert recorder.dropped == 1
    await recorder.close()
    assert writer.calls == 1
    assert recorder.failures == 1
    assert recorder.written == 0
    # One event over the cap, then the batch of three events (a twice, b once).
    assert lost == [("over_cap", 1), ("write_failed", 3)]


def test_count_outside_an_event_loop_keeps_the_count_for_later() -> None:
    recorder = UsageRecorder(Failing())
    recorder.count("token", "a", None, NOW)  # no running loop: no task, no error
    assert recorder.dropped == 0


def test_the_table_adds_rows_up_per_period() -> None:
    rows = [
        Count("c", "token", "", MINUTE, 2),
        Count("c", "token", "", MINUTE - 59, 1),  # in the last hour
        Count("c", "token", "", MINUTE - 60, 5),  # only the day and the week
        Count("c", "call", "", MINUTE - 1440, 7),  # only the week
        Count("c", "call_refused", "pop_replayed", MINUTE - 3, 1),
        Count("c", "token_refused", "client_auth_failed", MINUTE - 2000, 4),
        Count("c", "call", "", MINUTE + 5, 100),  # a node's clock ahead: not shown
    ]
    table = [(r.label, r.where, r.counts) for r in summarise(rows, MINUTE)]
    assert table == [
        ("Token issued", None, (3, 8, 8)),
        ("API call", None, (0, 0, 7)),
        ("Refused: client_auth_failed", "token request", (0, 0, 4)),
        ("Refused: pop_replayed", "API call", (1, 1, 1)),
    ]
    ordered = summarise(rows, MINUTE)
    # Refusals: most in the last week first.
    assert [r.error_code for r in ordered[2:]] == ["client_auth_failed", "pop_replayed"]


def test_the_chart_puts_each_count_in_its_bucket() -> None:
    rows = [
        Count("c", "token", "", MINUTE, 4),
        Count("c", "call_refused", "pop_replayed", MINUTE - 61, 2),
    ]
    day = chart(rows, MINUTE, PERIODS[1])
    assert day.top == 4
    drawn = [(b.series, b.title.split(": ")[1]) for b in day.bars if b.height > 0]
    assert drawn == [("refused", "2 × Refused"), ("issued", "4 × Token issued")]
    tallest = max(day.bars, key=lambda b: b.height)
    assert tallest.series == "issued"
    assert tallest.y == pytest.approx(12)
    assert len(day.bars) == 24 * 3
    empty = chart([], MINUTE, PERIODS[0])
    assert empty.top == 0
    assert all(b.height == 0 for b in empty.bars)
