"""Requests per second to one small API, four ways, in one run (docs/gateway.md, "Sizing"):

* **direct**: wrk against the upstream itself, a node ``http`` server answering ``{"ok":true}``;
* **nginx proxy_pass**: wrk through nginx (one worker, kept-alive upstream connections);
* **taap gateway**: wrk through the gateway (one uvicorn worker), each request with its own
  pre-built PoP (``guard_wrk.lua``), the gateway verifying it as the guard does (static key,
  clock pinned to when the PoPs were built, revocations checked against an empty log, in-process
  replay store) and forwarding it over its kept-alive pool;
* **guard (bench_guard.py --wrk)**: the guard in front of the sample app, the same way, for
  the ratio the issue asks for (gateway ÷ guard).

Then the latency the gateway adds: at half its peak rate (wrk paced by ``gateway_wrk.lua``, the
gateway's p50 minus the direct p50 at the same pace), and with one connection sending
sequential calls (p50 and p90); and the gateway's resident memory before and after its peak
run. Usage: ``.venv/bin/python bench/bench_gateway.py [--seconds 5] [--connections 16]``.
Needs node, nginx and wrk on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench_guard import KID, PATH, make_pops, make_token, run_wrk
from taap.core import generate_private_key

HERE = Path(__file__).resolve().parent
UPSTREAM_JS = """
const http = require("http");
const body = '{"ok":true}';
http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, {"content-type": "application/json", "content-length": body.length});
    res.end(body);
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def process(cmd: list[str], port: int, what: str, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, **kw)
    try:
        wait_port(port, what)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url: str, seconds: int, connections: int, *lua: str) -> dict[str, Any]:
    script = ["-s", lua[0], url, "--", *lua[1:]] if lua else [url]
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(bad_match.group(1)) if bad_match else 0
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": (total - bad) / seconds,
        "requests": total,
        "non_2xx": bad,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else float("nan"),
    }


def nginx_conf(folder: Path, port: int, upstream: int) -> Path:
    temp = folder / "nginx-tmp"
    temp.mkdir()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream api {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    return conf


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def rss_samples(pid: int, every: float) -> Iterator[list[int]]:
    """The process's RSS (KiB) every ``every`` seconds while the block runs."""
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            samples.append(rss_kib(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def adopt_redis(url: str) -> None:
    """Mark the Redis replay store at ``url`` as serving since long ago, so its first PoPs are
    not refused as issued right after a loss of its data (docs/deploy.md)."""
    import asyncio

    from taap.stores.redis import RedisReplayStore, connect

    async def adopt() -> None:
        client = connect(url)
        try:
            await RedisReplayStore(client).adopt(epoch=0)
        finally:
            await client.aclose()

    asyncio.run(adopt())


def added_latency(url: str, direct: str, headers: list[dict[str, str]]) -> tuple[float, float]:
    """p50 and p90 (ms) of the gateway's sequential answers minus the direct ones'."""
    through: list[float] = []
    plain: list[float] = []
    with httpx.Client(timeout=10) as http:
        for n, pop_headers in enumerate(headers):
            start = time.perf_counter()
            response = http.get(url, headers=pop_headers)
            through.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
            start = time.perf_counter()
            http.get(direct)
            plain.append(time.perf_counter() - start)
            del n

    def q(values: list[float], p: int) -> float:
        return statistics.quantiles(values, n=100)[p - 1] * 1000

    return q(through, 50) - q(plain, 50), q(through, 90) - q(plain, 90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds of wrk per row")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-calls", type=int, default=400)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--redis-url",
        help="replay store of the gateway (a spare database: it is marked as serving); default "
        "in-process, whose entries, under the pinned clock, never expire during the run",
    )
    args = parser.parse_args()
    for tool in ("node", "nginx", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not on PATH")
    server, client = generate_private_key(2048), generate_private_key(2048)
    now = time.time()
    bearer = "Bearer " + make_token(server, client, now)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "upstream.js").write_text(UPSTREAM_JS)
        up = free_port()
        with process(["node", str(folder / "upstream.js"), str(up)], up, "node upstream"):
            direct = f"http://127.0.0.1:{up}{PATH}"
            rows["direct to the node upstream"] = wrk(direct, args.seconds, args.connections)
            port = free_port()
            conf = nginx_conf(folder, port, up)
            nginx = ["nginx", "-p", str(folder), "-c", str(conf), "-g", "daemon off;"]
            with process(nginx, port, "nginx"):
                url = f"http://127.0.0.1:{port}{PATH}"
                rows["nginx proxy_pass"] = wrk(url, args.seconds, args.connections)
            half_count = 3000 * args.seconds + 2000
            count = 6000 * args.seconds + args.latency_calls + 2000 + half_count
            print(f"building {count} unique PoPs ...", file=sys.stderr)
            pops = make_pops(client, bearer, count, now)
            peak_pops = pops[args.latency_calls : -half_count]
            (folder / "pops.txt").write_text("\n".join(peak_pops) + "\n")
            (folder / "bearer.txt").write_text(bearer + "\n")
            (folder / "jwk.json").write_text(json.dumps({**server.public.jwk, "kid": KID}))
            gw = free_port()
            env = {
                **os.environ,
                "GUARD_BENCH_JWK": str(folder / "jwk.json"),
                "GUARD_BENCH_NOW": str(now),
                "GATEWAY_BENCH_UPSTREAM": f"http://127.0.0.1:{up}",
            }
            if args.redis_url:
                adopt_redis(args.redis_url)
                env["GATEWAY_BENCH_REDIS"] = args.redis_url
            cmd = [
                sys.executable, "-m", "uvicorn", "gateway_server:create", "--factory",
                "--app-dir", str(HERE), "--port", str(gw), "--workers", "1",
                "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            with process(cmd, gw, "taap gateway", env=env) as proc:
                url = f"http://127.0.0.1:{gw}{PATH}"
                base = {"Content-Type": "application/json", "Authorization": bearer}
                calls = [{**base, "X-Authorization": p} for p in pops[: args.latency_calls]]
                p50, p90 = added_latency(url, direct, calls)
                before = rss_kib(proc.pid)
                lua = [str(HERE / "guard_wrk.lua"), str(folder / "pops.txt")]
                with rss_samples(proc.pid, max(1.0, args.seconds / 12)) as during:
                    rows["taap gateway (verify + forward)"] = wrk(
                        url, args.seconds, args.connections, *lua, str(folder / "bearer.txt")
                    )
                after = rss_kib(proc.pid)
                # Half the peak: each connection waits so that together they send peak / 2.
                peak = rows["taap gateway (verify + forward)"]["rps"]
                pause = str(max(1, round(args.connections / (peak / 2) * 1000)))
                (folder / "half.txt").write_text("\n".join(pops[-half_count:]) + "\n")
                paced = str(HERE / "gateway_wrk.lua")
                bearer_file = str(folder / "bearer.txt")
                rows["gateway at half its peak rate"] = wrk(
                    url, args.seconds, args.connections, paced, str(folder / "half.txt"),
                    bearer_file, pause,
                )  # fmt: skip
                rows["direct at that rate"] = wrk(
                    direct, args.seconds, args.connections, paced, "-", "-", pause
                )
    # Enough unique PoPs for 8,000 req/s (an exhausted file shows as non-2xx, never as speed).
    guard = run_wrk(server, client, args.seconds, 8000 / 0.7)
    rows["guard + sample app (bench_guard --wrk)"] = {
        "rps": (guard["requests"] - guard["non_2xx"]) / args.seconds,
        "requests": guard["requests"],
        "non_2xx": guard["non_2xx"],
        "p50_ms": float("nan"),
    }
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, one process each, same machine")
    print(f"{'what':<46} {'req/s':>8} {'non-2xx':>8} {'p50 ms':>8}")
    for name, row in rows.items():
        print(f"{name:<46} {row['rps']:>8.0f} {row['non_2xx']:>8} {row['p50_ms']:>8.2f}")
    guard_rps = rows["guard + sample app (bench_guard --wrk)"]["rps"]
    ratio = rows["taap gateway (verify + forward)"]["rps"] / max(guard_rps, 1)
    print(f"gateway ÷ guard: {ratio:.0%}")
    print(f"added latency, one connection, sequential: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
    half = rows["gateway at half its peak rate"]["p50_ms"] - rows["direct at that rate"]["p50_ms"]
    print(f"added latency at half the gateway's peak rate: p50 {half:.2f} ms")
    print(f"gateway RSS: {before} KiB before its wrk run, {after} KiB after")
    print(f"gateway RSS during the run (KiB): {' '.join(map(str, during))}")
    print(f"replay store: {'Redis' if args.redis_url else 'in-process'}")
    if args.json:
        figures = {
            "rows": rows,
            "added_ms": {"p50": p50, "p90": p90},
            "rss_kib": [before, after],
            "rss_during_kib": during,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
