"""Can a caller tell "unknown client" from "wrong secret" by the time the token server takes?

SECURITY.md A2 asks for identical status, body and timing. This script measures it: thousands
of interleaved failed token requests of both kinds against the same server, compared with two
rank tests written out below in stdlib Python (Mann-Whitney U with a normal approximation and
tie correction; two-sample Kolmogorov-Smirnov with its asymptotic p-value). A reference request
that takes another path (right secret, no PoP: no failed-auth bucket update; the
rate-limit check and the body rules, then ``pop_missing``), shows on the same data how small a
difference the method resolves.

Two settings, both run by default:

* ``http``: a real ``taap serve`` process on loopback (SQLite file), one keep-alive connection,
  requests written to a raw socket and timed from the first byte sent to the last byte read;
* ``asgi``: the same app in-process (no socket), timing only the handler. Far less noise, so it
  shows differences a network caller could only reach with many more samples.

Every request has the same size (client ids and secrets of the real lengths, a PoP-sized header
in each). The kinds are shuffled with a fixed seed, so drift of the shared machine falls on all
kinds alike. This is a measurement, not a test: it prints tables and exits 0.

    .venv/bin/python bench/bench_timing.py                 # 4000 of each kind, both settings
    .venv/bin/python bench/bench_timing.py --samples 10000 --settings http
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import secrets
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from taap.core import generate_private_key
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.sql import open_registry
from taap.server.runtime import build_app
from taap.server.settings import ServerSettings

TAAP = str(Path(sys.executable).parent / "taap")
PATH = "/oauth2/v2/tokens"
ALNUM = string.ascii_letters + string.digits
HIGH_LIMITS = {"TAAP_RATE_CLIENT": "1000000000/1", "TAAP_RATE_ADDRESS": "1000000000/1"}
KINDS = ("unknown client", "wrong secret", "reference: right secret, no PoP")


# -- statistics (stdlib only) ----------------------------------------------------------
def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(U of ``a``, two-sided p-value, P(a > b) + P(a = b)/2) with tie-corrected normal approx."""
    n1, n2 = len(a), len(b)
    merged = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(merged)
    ties = 0.0
    i = 0
    while i < len(merged):
        j = i
        while j + 1 < len(merged) and merged[j + 1][0] == merged[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, merged, strict=True) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u1 - mean) / sigma if sigma else 0.0
    # erfc, not 1 - Phi: the tail stays accurate far below 1e-16.
    return u1, math.erfc(abs(z) / math.sqrt(2.0)), u1 / (n1 * n2)


def kolmogorov_smirnov(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(D, asymptotic two-sided p-value) of the two-sample KS test."""
    xs, ys = sorted(a), sorted(b)
    n1, n2 = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n1 and j < n2:
        value = min(xs[i], ys[j])
        while i < n1 and xs[i] == value:
            i += 1
        while j < n2 and ys[j] == value:
            j += 1
        d = max(d, abs(i / n1 - j / n2))
    ne = n1 * n2 / (n1 + n2)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def pvalue(p: float) -> str:
    """A p-value for the table (one that underflowed to 0 is printed as a bound)."""
    return "< 1e-300" if p <= 0 else f"{p:.3g}"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the requests ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    client_id: str
    secret: str
    pop_size: int


def _random(n: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def headers_for(kind: str, target: Target) -> list[tuple[bytes, bytes]]:
    """Headers of one request of ``kind``; every kind has the same total size."""
    if kind == KINDS[0]:
        client_id, secret = "taap-" + _random(len(target.client_id) - 5), _random(43)
    elif kind == KINDS[1]:
        client_id, secret = target.client_id, _random(len(target.secret))
    else:
        client_id, secret = target.client_id, target.secret
    basic = base64.b64encode(f"{client_id}:{secret}".encode())
    # A PoP-sized header in every request; only the reference's is not named X-Authorization,
    # so the reference passes authentication and stops at pop_missing.
    name = b"x-padding" if kind == KINDS[2] else b"x-authorization"
    filler = ("e" * target.pop_size).encode()
    return [
        (b"content-type", b"application/json"),
        (b"authorization", b"Basic " + basic),
        (name.ljust(len(b"x-authorization"), b"-"), filler),
    ]


def schedule(samples: int, warmup: int, seed: int) -> list[str]:
    order = [kind for kind in KINDS for _ in range(samples)]
    random.Random(seed).shuffle(order)
    warm = [KINDS[i % len(KINDS)] for i in range(warmup)]
    return warm + order


@dataclass
class Run:
    times: dict[str, list[float]]  # microseconds
    answers: dict[str, set[tuple[int, bytes]]]


# -- HTTP setting ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        body += chunk
    buffer[:] = body[length:]
    return status, bytes(body[:length])


def run_http(target: Target, order: list[str], port: int, warmup: int) -> Run:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    answers: dict[str, set[tuple[int, bytes]]] = {kind: set() for kind in KINDS}
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    try:
        for index, kind in enumerate(order):
            lines = [f"POST {PATH} HTTP/1.1".encode(), f"host: 127.0.0.1:{port}".encode()]
            lines += [name + b": " + value for name, value in headers_for(kind, target)]
            lines.append(b"content-length: 0")
            data = b"\r\n".join(lines) + b"\r\n\r\n"
            start = time.perf_counter_ns()
            sock.sendall(data)
            status, body = _read_response(sock, buffer)
            elapsed = (time.perf_counter_ns() - start) / 1000
            if index >= warmup:
                times[kind].append(elapsed)
                answers[kind].add((status, body))
    finally:
        sock.close()
    return Run(times, answers)


# -- ASGI setting ------------------------------------------------------------------------
async def run_asgi(app: Any, target: Target, order: list[str], warmup: int) -> Run:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    answers: dict[str, set[tuple[int, bytes]]] = {kind: set() for kind in KINDS}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for index, kind in enumerate(order):
        scope = {
            "type": "http",
            "method": "POST",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "headers": headers_for(kind, target),
            "client": ("127.0.0.1", 40000),
        }
        sent.clear()
        start = time.perf_counter_ns()
        await app(scope, receive, send)
        elapsed = (time.perf_counter_ns() - start) / 1000
        if index >= warmup:
            times[kind].append(elapsed)
            answers[kind].add((sent[0]["status"], sent[1]["body"]))
    return Run(times, answers)


# -- set-up ------------------------------------------------------------------------------
async def _register(database_url: str) -> Target:
    pepper = load_pepper(parse_database_url(database_url))
    registry = await open_registry(database_url, pepper=pepper)
    try:
        key = generate_private_key(2048)
        record, secret = await registry.create_client(
            name="timing", keys=[key.public], apis=["connectivity"]
        )
    finally:
        await registry.close()
    return Target(record.client_id, secret, pop_size=720)


def _start_server(folder: Path, database_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env.update(HIGH_LIMITS)
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen(
        [TAAP, "serve", "--port", str(port), "--database-url", database_url],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"taap serve did not start: {(folder / 'serve.log').read_text()[-2000:]}")


# -- report ------------------------------------------------------------------------------
def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error_code"))
    except (ValueError, AttributeError):
        return repr(body[:40])


def samples_needed(a: Sequence[float], b: Sequence[float], alpha: float = 1e-3) -> str:
    """The fewest requests of each kind (first n, doubling) at which Mann-Whitney p < alpha."""
    n = 25
    while n <= min(len(a), len(b)):
        if mann_whitney(a[:n], b[:n])[1] < alpha:
            return f"{n:,}"
        n *= 2
    return f"> {min(len(a), len(b)):,}"


def report(title: str, run: Run, *, out: Callable[[str], None] = print) -> None:
    out(f"\n### {title}\n")
    out("| kind | n | answer | median µs | p90 µs | p99 µs | mean µs |")
    out("|---|---:|---|---:|---:|---:|---:|")
    for kind in KINDS:
        values = run.times[kind]
        codes = sorted({f"{status} {_error_code(body)}" for status, body in run.answers[kind]})
        answer = "; ".join(codes) if len(codes) <= 2 else f"{len(codes)} different"
        out(
            f"| {kind} | {len(values)} | {answer} | {statistics.median(values):,.1f} | "
            f"{percentile(values, 0.9):,.1f} | {percentile(values, 0.99):,.1f} | "
            f"{statistics.fmean(values):,.1f} |"
        )
    same = run.answers[KINDS[0]] == run.answers[KINDS[1]] and len(run.answers[KINDS[0]]) == 1
    verdict = "yes" if same else "NO"
    out(f"\nunknown client and wrong secret: byte-identical status and body: {verdict}\n")
    out(
        "| comparison | Δ median µs | Mann-Whitney U | p (MW) | P(A>B) | KS D | p (KS) "
        "| n for p < 0.001 |"
    )
    out("|---|---:|---:|---:|---:|---:|---:|---:|")
    for a_kind, b_kind in ((KINDS[0], KINDS[1]), (KINDS[2], KINDS[1])):
        a, b = run.times[a_kind], run.times[b_kind]
        u, p_mw, prob = mann_whitney(a, b)
        d, p_ks = kolmogorov_smirnov(a, b)
        delta = statistics.median(a) - statistics.median(b)
        out(
            f"| {a_kind} vs {b_kind} | {delta:+,.1f} | {u:,.0f} | {pvalue(p_mw)} | {prob:.3f} | "
            f"{d:.4f} | {pvalue(p_ks)} | {samples_needed(a, b)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4000, help="requests of each kind")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--settings", default="http,asgi", help="http, asgi or both")
    args = parser.parse_args()
    wanted = {s.strip() for s in args.settings.split(",")}
    order = schedule(args.samples, args.warmup, args.seed)
    load = os.getloadavg()[0]
    print(
        f"# unknown client vs wrong secret: {args.samples} of each kind, interleaved "
        f"(seed {args.seed}), load average {load:.2f} on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="taap-timing-") as tmp:
        folder = Path(tmp)
        database_url = f"sqlite:///{folder / 'taap.db'}"
        if "http" in wanted:
            proc, port = _start_server(folder, database_url)
            try:
                target = asyncio.run(_register(database_url))
                report(
                    "HTTP: taap serve on loopback, one keep-alive connection",
                    run_http(target, order, port, args.warmup),
                )
            finally:
                proc.terminate()
                proc.wait(15)
        if "asgi" in wanted:
            for name, value in HIGH_LIMITS.items():
                os.environ[name] = value

            async def in_process() -> Run:
                settings = ServerSettings.load(database_url=database_url)
                app = await build_app(settings)
                try:
                    target = await _register(database_url)
                    return await run_asgi(app, target, order, args.warmup)
                finally:
                    await app.aclose()

            report("In-process ASGI (no socket): the handler alone", asyncio.run(in_process()))


if __name__ == "__main__":
    main()
