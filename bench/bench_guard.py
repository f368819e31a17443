"""Guarded requests per second, beside the crypto floor measured in the same run.

What is timed:

* floor: what no guard can skip per request: two RSA-2048 PKCS#1 v1.5 SHA-256 verifications
  (access token, PoP) and one SHA-256 over the signed values;
* in-process: a whole ASGI request through :class:`taap.resource.GuardMiddleware` (headers,
  ``request_parts``, access-token verify, PoP verify, product, in-process replay record) to a
  trivial inner app, and to the A9 sample app (adds Starlette routing and the JSON answer); no
  sockets, each request with its own pre-built PoP. The access token is the same on every
  request, as a real client's is for an hour: with the guard's verified-token memo on (the
  default) it is verified in full once, then recognised by digest with its key, issuer and
  expiry rechecked; the "memo off" row verifies it in full every time;
* HTTP (``--wrk``): the sample app on one uvicorn worker, driven by ``wrk`` with a Lua script
  that sends pre-generated unique PoPs (``bench/guard_wrk.lua``).

Every validator checks revocations as a guard with a token server does (a
:class:`~taap.resource.revocations.RevocationWatcher` over an empty log; on the pinned clock its
state stays fresh, so what is timed is the per-request check, not fetches).
The validator's clock is pinned to the time the PoPs were built, so a long run never ages them.
In-process batches are interleaved with floor batches and the best batch of each is reported.
Usage: ``.venv/bin/python bench/bench_guard.py [--requests N] [--repeats R] [--wrk SECONDS]
[--json PATH]``; ``--json`` also writes the rows (best and every batch) for
``bench/compare_commits.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from taap.core import (
    MemoryReplayStore,
    PrivateKey,
    build_pop_token,
    generate_private_key,
    issue_access_token,
    public_key_from_jwk,
    request_pairs,
)
from taap.core.jws import parse_compact
from taap.core.revocation import RevocationEntry
from taap.resource import GuardMiddleware, GuardSettings, StaticKeys, Validator
from taap.resource.revocations import RevocationWatcher
from taap.resource.sample import create_sample_app

HERE = Path(__file__).resolve().parent
ISSUER = "http://127.0.0.1/oauth2/v1"
KID = "bench"
PATH = "/iot-connectivity/v1/devices/8901260000000000001"


def make_token(server: PrivateKey, client: PrivateKey, now: float) -> str:
    return issue_access_token(
        key=server,
        kid=KID,
        issuer=ISSUER,
        client_id="taap-bench",
        apis=["connectivity"],
        cnf_jwk=client.public.jwk,
        now=now,
    )


def make_pops(client: PrivateKey, bearer: str, count: int, now: float) -> list[str]:
    base = [("Content-Type", "application/json"), ("Authorization", bearer)]
    pairs = request_pairs("GET", PATH, base)
    return [build_pop_token(pairs, client, now=now) for _ in range(count)]


def floor_batch(server: PrivateKey, token: str, pop: str, count: int) -> float:
    """Seconds per request of the unavoidable crypto."""
    at, pp = (parse_compact(t, max_bytes=16384, max_header_bytes=2048) for t in (token, pop))
    at_key = server.public.key
    pop_key = public_key_from_jwk(at.payload["cnf"]["jwk"]).key
    pkcs1, sha = padding.PKCS1v15(), hashes.SHA256()
    signed = ("application/json" + "Bearer " + token + PATH + "GET").encode()
    start = time.perf_counter()
    for _ in range(count):
        at_key.verify(at.signature, at.signing_input, pkcs1, sha)
        pop_key.verify(pp.signature, pp.signing_input, pkcs1, sha)
        hashlib.sha256(signed).digest()
    return (time.perf_counter() - start) / count


async def no_revocations(after: int) -> list[RevocationEntry]:
    """The revocation log of a registry where nothing was revoked."""
    return []


def watcher(now: float) -> RevocationWatcher:
    """Revocation checks on the pinned clock: fetched once, fresh ever after."""
    return RevocationWatcher(no_revocations, clock=lambda: now)


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def scope_for(bearer: str, pop: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", bearer.encode()),
            (b"x-authorization", pop.encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_batch(app: Any, bearer: str, pops: list[str]) -> tuple[float, int]:
    """Seconds per request through ``app``, and how many answered 200."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for pop in pops:
        await app(scope_for(bearer, pop), receive, send)
    elapsed = time.perf_counter() - start
    return elapsed / len(pops), statuses.count(200)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_wrk(
    server: PrivateKey, client: PrivateKey, seconds: int, rate_hint: float
) -> dict[str, Any]:
    now = time.time()
    bearer = "Bearer " + make_token(server, client, now)
    # HTTP runs well below the in-process rate; an exhausted file shows as non-2xx in the report.
    count = int(rate_hint * seconds * 0.7) + 2000
    print(f"  building {count} unique PoPs for wrk ...", file=sys.stderr)
    pops = make_pops(client, bearer, count, now)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "pops.txt").write_text("\n".join(pops) + "\n")
        (folder / "bearer.txt").write_text(bearer + "\n")
        (folder / "jwk.json").write_text(json.dumps({**server.public.jwk, "kid": KID}))
        port = free_port()
        env = {
            **os.environ,
            "GUARD_BENCH_JWK": str(folder / "jwk.json"),
            "GUARD_BENCH_NOW": str(now),
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "guard_server:create",
                "--factory",
                "--app-dir",
                str(HERE),
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("guard server did not start") from None
                    time.sleep(0.05)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    "-c16",
                    f"-d{seconds}s",
                    "-s",
                    str(HERE / "guard_wrk.lua"),
                    f"http://127.0.0.1:{port}{PATH}",
                    "--",
                    str(folder / "pops.txt"),
                    str(folder / "bearer.txt"),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            proc.terminate()
            proc.wait(10)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(bad_match.group(1)) if bad_match else 0
    latency = re.search(r"Latency\s+(\S+)", out)
    return {
        "requests": total,
        "non_2xx": bad,
        "rps": rps,
        "latency_avg": latency.group(1) if latency else "?",
        "pops": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved batches")
    parser.add_argument("--wrk", type=int, default=0, help="seconds of wrk over HTTP (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    server, client = generate_private_key(2048), generate_private_key(2048)
    now = time.time()
    token = make_token(server, client, now)
    bearer = "Bearer " + token
    total = args.requests * args.repeats
    print(f"building {total} PoPs ...", file=sys.stderr)
    pops = make_pops(client, bearer, total, now)

    def validator(token_cache: int = 4096) -> Validator:
        return Validator(
            StaticKeys({KID: server.public}, issuer=ISSUER),
            replay=MemoryReplayStore(capacity=4 * total),
            settings=GuardSettings(token_cache=token_cache),
            clock=lambda: now,
            revocations=watcher(now),
        )

    # Each app gets its own validator (own replay store), so the same PoPs serve all three.
    apps = {
        "guard, token memo off: every token verified in full": GuardMiddleware(
            _ok, validator=validator(0)
        ),
        "guard, token memo on (default), trivial inner app": GuardMiddleware(
            _ok, validator=validator()
        ),
        "guard + A9 sample app (Starlette), memo on": create_sample_app(validator=validator()),
    }
    floors: list[float] = []
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for r in range(args.repeats):
        chunk = pops[r * args.requests : (r + 1) * args.requests]
        floors.append(floor_batch(server, token, chunk[0], args.requests))
        for name, app in apps.items():
            per, ok = asyncio.run(asgi_batch(app, bearer, chunk))
            assert ok == len(chunk), f"{name}: refused {len(chunk) - ok} requests"
            timings[name].append(per)
    floor = min(floors)
    rows = [("crypto floor (2 RSA-2048 verifies + SHA-256)", floor)]
    rows += [(name, min(values)) for name, values in timings.items()]
    samples = timings["guard + A9 sample app (Starlette), memo on"]
    print(f"\nGuard throughput, {args.repeats} batches of {args.requests}, best batch each")
    print(f"{'what':<54} {'µs/req':>8} {'req/s':>8} {'of floor':>9}")
    for name, per in rows:
        print(f"{name:<54} {per * 1e6:>8.1f} {1 / per:>8.0f} {floor / per:>8.0%}")
    figures: dict[str, Any] = {
        "requests": args.requests,
        "repeats": args.repeats,
        "rows": {name: {"rps": 1 / per} for name, per in rows},
        "batches_us": {
            name: [v * 1e6 for v in values]
            for name, values in [(rows[0][0], floors), *timings.items()]
        },
    }
    if args.wrk:
        result = run_wrk(server, client, args.wrk, 1 / min(samples))
        good = (result["requests"] - result["non_2xx"]) / args.wrk
        http_row = "HTTP: wrk -t1 -c16, 1 uvicorn worker, sample app"
        print(f"{http_row:<54} {1e6 / max(good, 1):>8.1f} {good:>8.0f} {floor * good:>8.0%}")
        print(
            f"  wrk: {result['requests']} requests, {result['non_2xx']} non-2xx, "
            f"avg latency {result['latency_avg']}, {result['pops']} unique PoPs prepared"
        )
        figures["rows"][http_row] = {"rps": good}
        figures["wrk"] = result
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
