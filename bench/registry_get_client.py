"""get_client latency and throughput of the registry back-ends (docs/registry.md).

Usage::

    .venv/bin/python bench/registry_get_client.py [--postgres URL] [-n 2000] [-c 16]

For each back-end and I/O mode it prints: sequential get_client p50/p99 (µs), get_client/s with
``-c`` concurrent tasks, and issuances/s of a token-server-like mix (get_client + 1 RS256 verify
+ 2 RS256 signs per request) beside the crypto-only floor of that mix measured in the same run.
Async drivers (aiosqlite, asyncpg, psycopg_async) are measured when greenlet and the driver are
importable (e.g. ``PYTHONPATH=/tmp/asyncdeps`` after ``pip install --target``).
A PostgreSQL URL gets a throw-away database created beside it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from taap.core import generate_private_key
from taap.server.database import parse_database_url
from taap.server.sql import open_registry

PEPPER = b"bench-pepper-0123456789"


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


async def _measure(url: str, mode: str | None, n: int, c: int) -> dict[str, float]:
    registry = await open_registry(url, pepper=PEPPER, mode=mode)
    keys = [generate_private_key(), generate_private_key()]
    record, _ = await registry.create_client(
        name="bench", keys=[k.public for k in keys], apis=["location", "sms-notification"]
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

    async def worker(count: int) -> None:
        for _ in range(count):
            await registry.get_client(cid)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n // c) for _ in range(c)))
    conc = (n // c) * c / (time.perf_counter() - start)

    signer = keys[0]
    message = b"x" * 600
    signature = signer.sign_rs256(message)

    async def mixed(count: int) -> None:
        for _ in range(count):
            got = await registry.get_client(cid)
            assert got is not None
            got.keys[0].verify_rs256(signature, message)
            signer.sign_rs256(message)
            signer.sign_rs256(message)

    m = max(n // 4, c)
    start = time.perf_counter()
    await asyncio.gather(*(mixed(m // c) for _ in range(c)))
    mix = (m // c) * c / (time.perf_counter() - start)
    await registry.close()
    return {
        "p50": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99) - 1],
        "conc": conc,
        "mix": mix,
    }


def _crypto_floor(n: int) -> float:
    key = generate_private_key()
    message = b"x" * 600
    signature = key.sign_rs256(message)
    start = time.perf_counter()
    for _ in range(n):
        key.public.verify_rs256(signature, message)
        key.sign_rs256(message)
        key.sign_rs256(message)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="postgresql://user:pass@host/db (CREATEDB needed)")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="taap-bench-"))
    cases: list[tuple[str, str, str | None]] = []
    cases.append(("sqlite", f"sqlite:///{tmp}/a.db", "inline"))
    cases.append(("sqlite", f"sqlite:///{tmp}/b.db", "thread"))
    if _has("greenlet", "aiosqlite"):
        cases.append(("sqlite", f"sqlite+aiosqlite:///{tmp}/c.db", None))
    admin = None
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
        if _has("greenlet", "asyncpg"):
            cases.append(("postgresql", url("asyncpg"), None))
        if _has("greenlet"):
            cases.append(("postgresql", url("psycopg_async"), None))
    floor = _crypto_floor(max(args.n // 4, 200))
    print(f"crypto floor (1 verify + 2 signs): {floor:,.0f}/s")
    print(
        f"| backend | driver | mode | get_client p50 µs | p99 µs | get_client/s (c={args.c}) "
        "| mix/s | mix / floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    try:
        for backend, case_url, mode in cases:
            parsed = parse_database_url(case_url)
            r = asyncio.run(_measure(case_url, mode, args.n, args.c))
            print(
                f"| {backend} | {parsed.driver} | {mode or 'async'} | {r['p50']:.0f} | "
                f"{r['p99']:.0f} | {r['conc']:,.0f} | {r['mix']:,.0f} | {r['mix'] / floor:.0%} |"
            )
    finally:
        if admin:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
