"""get_client latency and throughput of the registry back-ends (docs/registry.md).

Usage::

    .venv/bin/python bench/registry_get_client.py [--postgres URL] [-n 2000] [-c 16]

For each back-end and I/O mode it prints, measured in the same run:

- sequential ``get_client`` p50/p99 (µs) beside the *query floor*: the same SQL statement run
  on the bare driver (sqlite3 / psycopg, one open connection, no pool, no parsing);
- ``get_client``/s with ``-c`` concurrent tasks;
- with ``--pg-delay-ms D``, PostgreSQL again through ``delay_proxy.py`` (D ms added each way,
  standing in for a database on another machine);
- issuances/s of a token-server-like mix (``get_client`` + 1 RS256 verify + 2 RS256 signs per
  request, ``-c`` tasks on one event loop) beside the *crypto floor* (the same crypto alone,
  measured just before that row, so machine noise hits both alike).

Async drivers (aiosqlite, asyncpg, psycopg_async) are measured when greenlet and the driver are
importable (``pip install --target DIR greenlet aiosqlite asyncpg`` + ``PYTHONPATH=DIR``).
A PostgreSQL URL gets a throw-away database created beside it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from taap.core import PrivateKey, generate_private_key
from taap.server.registry._rules import to_datetime
from taap.server.registry._sql_core import CLIENT_SQL
from taap.server.registry.database import parse_database_url
from taap.server.registry.sql import open_registry

PEPPER = b"bench-pepper-0123456789"
MESSAGE = b"x" * 600


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * q))]


def _query_floor(url: str, client_id: str, n: int) -> float:
    """p50 µs of the get_client statement on the bare driver."""
    parsed = parse_database_url(url)
    dialect = parsed.url.get_dialect()()
    compiled = CLIENT_SQL.compile(dialect=dialect)
    now = to_datetime(time.time())
    samples: list[float] = []
    if parsed.backend == "sqlite":
        conn: Any = sqlite3.connect(str(parsed.sqlite_path))
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        params: Any = tuple(
            stamp if name == "now" else client_id for name in compiled.positiontup or ()
        )
        sql = str(compiled)
    else:
        libpq = parsed.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(libpq, autocommit=True)
        sql, params = str(compiled), {"cid": client_id, "now": now}
    try:
        for i in range(n + 50):
            start = time.perf_counter_ns()
            conn.execute(sql, params).fetchall()
            if i >= 50:
                samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        conn.close()
    return statistics.median(samples)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _crypto_floor(key: PrivateKey, n: int) -> float:
    signature = key.sign_rs256(MESSAGE)
    start = time.perf_counter()
    for _ in range(n):
        key.public.verify_rs256(signature, MESSAGE)
        key.sign_rs256(MESSAGE)
        key.sign_rs256(MESSAGE)
    return n / (time.perf_counter() - start)


async def _measure(url: str, mode: str | None, n: int, c: int, key: PrivateKey) -> dict[str, Any]:
    registry = await open_registry(url, pepper=PEPPER, mode=mode)
    record, _ = await registry.create_client(
        name="bench",
        keys=[key.public, generate_private_key().public],
        apis=["location", "sms-notification"],
    )
    cid = record.client_id
    for _ in range(50):
        await registry.get_client(cid)
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await registry.get_client(cid)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()

    async def reads(count: int) -> None:
        for _ in range(count):
            await registry.get_client(cid)

    start = time.perf_counter()
    await asyncio.gather(*(reads(n // c) for _ in range(c)))
    concurrent = (n // c) * c / (time.perf_counter() - start)

    signature = key.sign_rs256(MESSAGE)

    async def mixed(count: int) -> None:
        for _ in range(count):
            got = await registry.get_client(cid)
            assert got is not None
            got.keys[0].verify_rs256(signature, MESSAGE)
            key.sign_rs256(MESSAGE)
            key.sign_rs256(MESSAGE)

    m = max(n // 4, c)
    floor = _crypto_floor(key, m // 2)
    start = time.perf_counter()
    await asyncio.gather(*(mixed(m // c) for _ in range(c)))
    mix = (m // c) * c / (time.perf_counter() - start)
    await registry.close()
    return {
        "cid": cid,
        "p50": statistics.median(samples),
        "p99": _pct(samples, 0.99),
        "conc": concurrent,
        "mix": mix,
        "floor": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postgres", help="postgresql://user:pass@host/db (CREATEDB needed)")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    parser.add_argument(
        "--pg-delay-ms",
        type=float,
        default=0,
        help="Also run the PostgreSQL sync modes through a proxy adding this delay each way.",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="taap-bench-"))
    cases: list[tuple[str, str, str | None]] = [
        ("sqlite", f"sqlite:///{tmp}/a.db", "inline"),
        ("sqlite", f"sqlite:///{tmp}/b.db", "thread"),
    ]
    if _has("greenlet", "aiosqlite"):
        cases.append(("sqlite", f"sqlite+aiosqlite:///{tmp}/c.db", None))
    admin = None
    proxy: subprocess.Popen[str] | None = None
    dbname = f"taap_bench_{uuid.uuid4().hex[:8]}"
    if args.postgres:
        base = parse_database_url(args.postgres).url
        admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        pg = base.set(database=dbname)

        def url(driver: str) -> str:
            return pg.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)

        cases.append(("postgresql", url("psycopg"), "inline"))
        cases.append(("postgresql", url("psycopg"), "thread"))
        if args.pg_delay_ms:
            proxy_port = _free_port()
            proxy = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("delay_proxy.py")),
                    str(proxy_port),
                    base.host or "127.0.0.1",
                    str(base.port or 5432),
                    str(args.pg_delay_ms),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proxy.stdout is not None
            proxy.stdout.readline()  # "ready"
            far = pg.set(drivername="postgresql+psycopg", host="127.0.0.1", port=proxy_port)
            label = f"postgresql +{args.pg_delay_ms:g} ms each way"
            far_url = far.render_as_string(hide_password=False)
            cases.append((label, far_url, "inline"))
            cases.append((label, far_url, "thread"))
        if _has("greenlet", "asyncpg"):
            cases.append(("postgresql", url("asyncpg"), None))
        if _has("greenlet"):
            cases.append(("postgresql", url("psycopg_async"), None))
    key = generate_private_key()
    print(
        f"| backend | driver | mode | get_client p50 µs | p99 µs | query floor p50 µs "
        f"| get_client/s (c={args.c}) | mix/s | crypto floor/s | mix / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for backend, case_url, mode in cases:
            parsed = parse_database_url(case_url)
            r = asyncio.run(_measure(case_url, mode, args.n, args.c, key))
            sync_url = parsed.url.set(
                drivername="sqlite" if parsed.backend == "sqlite" else "postgresql+psycopg"
            ).render_as_string(hide_password=False)
            floor = _query_floor(sync_url, r["cid"], args.n)
            print(
                f"| {backend} | {parsed.driver} | {mode or 'async'} | {r['p50']:.0f} | "
                f"{r['p99']:.0f} | {floor:.0f} | {r['conc']:,.0f} | {r['mix']:,.0f} | "
                f"{r['floor']:,.0f} | {r['mix'] / r['floor']:.0%} |",
                flush=True,
            )
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        if admin:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
