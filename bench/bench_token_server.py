"""Token-server throughput (issue 3): `taap serve` v2 issuances/s with full checks, beside
oidc-provider and the crypto floor, all measured in one run with the same load generator.

    .venv/bin/python bench/bench_token_server.py [--duration 10] [--connections 16]

Load: `wrk` replaying pre-generated unique PoPs (bench/token_server_wrk.lua walks a file of
them, one slice per wrk thread). Every request is a real v2 token request: Basic secret check,
registry lookup (SQLite file), PoP verify (A3 steps 1-6), replay record, two RS256 signatures
(one in --token-mode single). oidc-provider (npm, installed into .cache/token_server_bench)
issues RS256 JWT access tokens for client_credentials under the same wrk settings.
Signing: the default TAAP_SIGN_THREADS=auto signs on a thread pool with one worker (one process
then uses more than one core, as oidc-provider's does); --sign-threads 0 adds inline rows.
Floor: per request 1 RS256 verify + 2 RS256 signs (1 + 1 for single mode) in a tight loop on
one core, same key sizes. Latency at half the peak rate uses wrk's per-connection delay.
Peak RSS is VmHWM of each server process (the largest worker).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from taap.core import PrivateKey, build_pop_token, generate_private_key, load_private_key
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.sql import open_registry
from taap.stores.redis import RedisReplayStore, connect

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TAAP = str(Path(sys.executable).parent / "taap")
OIDC_DIR = ROOT / ".cache" / "token_server_bench"
OIDC_INDEX = OIDC_DIR / "node_modules" / "oidc-provider" / "lib" / "index.js"
OIDC_SECRET = "bench-secret-0123456789abcdef0123456789"
PATH = "/oauth2/v2/tokens"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the crypto floor ---------------------------------------------------------------------
def crypto_floor(signs: int, verifies: int = 1, seconds: float = 3.0) -> tuple[float, float]:
    """Requests/s if a request cost only ``verifies`` RS256 verifies + ``signs`` signs: by the
    wall clock, and per CPU-second of this process (robust to other load on the machine)."""
    client, server = generate_private_key(2048), generate_private_key(2048)
    message = b"x" * 600
    signature = client.sign_rs256(message)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(verifies):
            client.public.verify_rs256(signature, message)
        for _ in range(signs):
            server.sign_rs256(message)
        count += 1
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


# -- PoP generation (parallel, before each run) -------------------------------------------
_KEY: PrivateKey | None = None


def _init_worker(pem: bytes) -> None:
    global _KEY
    _KEY = load_private_key(pem)


def _make_pops(args: tuple[str, int, float]) -> list[str]:
    auth, count, now = args
    assert _KEY is not None
    pairs = [
        ("Content-Type", "application/json"),
        ("Authorization", auth),
        ("uri", PATH),
        ("http-method", "POST"),
    ]
    return [build_pop_token(pairs, _KEY, now=now) for _ in range(count)]


def make_pops(key: PrivateKey, auth: str, count: int, folder: Path) -> Path:
    """``count`` unique PoPs, valid for the next ~70 s, one per line."""
    now = time.time() + 5  # iat may lead by the leeway; buys a few seconds of age
    procs = os.cpu_count() or 2
    chunks = [(auth, count // procs + 1, now) for _ in range(procs)]
    with ProcessPoolExecutor(procs, initializer=_init_worker, initargs=(key.to_pem(),)) as pool:
        pops = [pop for chunk in pool.map(_make_pops, chunks) for pop in chunk]
    path = folder / "pops.txt"
    path.write_text("\n".join(pops[:count]) + "\n")
    return path


# -- wrk ----------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    rss_mb: float | None = None
    cpu_ms: float | None = None  # server CPU time (user + system, all processes) per request


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(text: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def run_wrk(
    name: str, url: str, script: Path, script_args: list[str], args: argparse.Namespace
) -> Result:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"  [{name}] wrk socket errors: {socket_errors.group(1)}", file=sys.stderr)
    return Result(name, rps, _latency(out, "50"), _latency(out, "99"), errors, total)


# -- processes ----------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(c) for c in children]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (uvicorn workers) so far."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pid: int) -> float:
    """Largest VmHWM among ``pid`` and its children (the busiest worker), in MiB."""
    peaks = []
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            peaks.append(int(match.group(1)) / 1024)
    workers = _children(pid)
    if workers:  # uvicorn's supervisor holds no requests: report the workers
        peaks = peaks[1:] or peaks
    return max(peaks) if peaks else float("nan")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Setup:
    folder: Path
    database_url: str
    key: PrivateKey
    auth: str


async def _register(database_url: str) -> tuple[str, str, PrivateKey]:
    key = generate_private_key(2048)
    database = parse_database_url(database_url)
    registry = await open_registry(database, pepper=load_pepper(database))
    try:
        record, secret = await registry.create_client(
            name="bench", keys=[key.public], apis=["connectivity", "sms-notification"]
        )
    finally:
        await registry.close()
    return record.client_id, secret, key


async def _adopt(url: str) -> None:
    client = connect(url)
    try:
        await RedisReplayStore(client).adopt(epoch=0)
    finally:
        await client.aclose()


def prepare(folder: Path) -> Setup:
    database_url = f"sqlite:///{folder / 'taap.db'}"
    client_id, secret, key = asyncio.run(_register(database_url))
    auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return Setup(folder, database_url, key, auth)


def bench_taap(
    setup: Setup,
    name: str,
    args: argparse.Namespace,
    *flags: str,
    delay_ms: float = 0,
    expected_rps: float = 2500,
    env_extra: dict[str, str] | None = None,
    source: Path | None = None,
) -> Result:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env.update(env_extra or {})
    if source is not None:  # an older checkout's src/ first on the path: a "before" row
        env["PYTHONPATH"] = str(source)
    cmd = [TAAP, "serve", "--port", str(port), "--database-url", setup.database_url, *flags]
    log = (setup.folder / f"{name.replace(' ', '_')}.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        count = int(expected_rps * args.duration * 1.3) + 1000
        pops = make_pops(setup.key, setup.auth, count, setup.folder)
        cpu = cpu_seconds(proc.pid)
        result = run_wrk(
            name,
            f"http://127.0.0.1:{port}",
            BENCH / "token_server_wrk.lua",
            [str(pops), str(args.threads), setup.auth, PATH, str(int(delay_ms))],
            args,
        )
        result.cpu_ms = 1000 * (cpu_seconds(proc.pid) - cpu) / max(result.requests, 1)
        result.rss_mb = peak_rss_mb(proc.pid)
        return result
    finally:
        stop(proc)
        log.close()


def install_oidc_provider() -> bool:
    if OIDC_INDEX.exists():
        return True
    if not shutil.which("npm"):
        return False
    OIDC_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            str(OIDC_DIR),
            "oidc-provider@9",
        ],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0 and OIDC_INDEX.exists()


def bench_oidc(name: str, args: argparse.Namespace, *, delay_ms: float = 0) -> Result | None:
    if not install_oidc_provider():
        print("oidc-provider could not be installed: skipped", file=sys.stderr)
        return None
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(BENCH / "token_server_oidc.mjs"), str(OIDC_INDEX), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/.well-known/openid-configuration", proc)
        auth = "Basic " + base64.b64encode(f"bench:{OIDC_SECRET}".encode()).decode()
        check = httpx.post(
            f"http://127.0.0.1:{port}/token",
            headers={"Authorization": auth},
            data={"grant_type": "client_credentials", "scope": "api"},
        )
        check.raise_for_status()
        cpu = cpu_seconds(proc.pid)
        result = run_wrk(
            name,
            f"http://127.0.0.1:{port}",
            BENCH / "token_server_oidc_wrk.lua",
            [auth, str(int(delay_ms))],
            args,
        )
        result.cpu_ms = 1000 * (cpu_seconds(proc.pid) - cpu) / max(result.requests, 1)
        result.rss_mb = peak_rss_mb(proc.pid)
        return result
    finally:
        stop(proc)


def _floor_index(name: str) -> int:
    """Which floor a run is held against: 0 = 1 verify + 2 signs, 1 = 1 + 1 (single mode),
    2 = 1 sign (oidc-provider); the order of each sample in ``floors``."""
    return 2 if "oidc" in name else 1 if "single" in name else 0


def table(
    results: list[Result], floor2: float, floor1: float, floor0: float, oidc: Result | None
) -> str:
    lines = [
        "| run | req/s | p50 ms | p99 ms | non-2xx | peak RSS MiB | vs floor | vs oidc-provider "
        "| CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        floor = (floor2, floor1, floor0)[_floor_index(r.name)]
        vs_floor = f"{100 * r.rps / floor:.0f} %"
        vs_oidc = f"{100 * r.rps / oidc.rps:.0f} %" if oidc and r is not oidc else ""
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else ""
        cpu = f"{r.cpu_ms:.3f}" if r.cpu_ms else ""
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
            f"| {rss} | {vs_floor} | {vs_oidc} | {cpu} |"
        )
    return "\n".join(lines)


def cpu_table(runs: dict[str, list[Result]], floor2: float, floor1: float, floor0: float) -> str:
    """Per CPU-second figures: what one core would serve if it ran nothing else."""
    lines = [
        "| run | CPU ms/req (median) | req per CPU-second | vs floor (CPU) |",
        "|---|---:|---:|---:|",
    ]
    for name, group in runs.items():
        cpus = sorted(r.cpu_ms for r in group if r.cpu_ms)
        if not cpus or "half" in name or "workers" in name:
            continue
        cpu = cpus[len(cpus) // 2]
        floor = (floor2, floor1, floor0)[_floor_index(name)]
        rate = 1000 / cpu
        lines.append(f"| {name} | {cpu:.3f} | {rate:,.0f} | {100 * rate / floor:.0f} % |")
    return "\n".join(lines)


def paired_table(
    runs: dict[str, list[Result]],
    floors: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]],
) -> str:
    """Each run against the floor and oidc-provider of its own round; the median of those ratios.

    The machine's speed drifts over minutes, so a ratio between runs of the same round cancels
    most of the drift that the medians of whole rows (above) keep.
    """
    oidc = next((group for name, group in runs.items() if "oidc" in name), None)
    lines = [
        "| run | vs floor, per round | median | vs oidc-provider, per round | median |",
        "|---|---|---:|---|---:|",
    ]
    for name, group in runs.items():
        if "oidc" in name:
            continue
        which = _floor_index(name)
        # The round's floor: the better of the samples taken just before and just after it.
        by_floor = [
            r.rps / max(floors[i][which][0], floors[i + 1][which][0])
            for i, r in enumerate(group)
            if i + 1 < len(floors)
        ]
        by_oidc = [r.rps / o.rps for r, o in zip(group, oidc or [], strict=False)]
        cells = []
        for ratios in (by_floor, by_oidc):
            shown = ", ".join(f"{100 * x:.0f}" for x in ratios)
            middle = f"{100 * sorted(ratios)[len(ratios) // 2]:.0f} %" if ratios else ""
            cells += [shown, middle]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(runs: list[Result]) -> Result:
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median run is shown")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TAAP_TEST_REDIS_URL", "redis://127.0.0.1:6390/0"),
        help="Redis for the 2-worker run",
    )
    parser.add_argument("--skip-oidc", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument(
        "--sign-threads",
        type=int,
        default=None,
        help="add rows with TAAP_SIGN_THREADS=N (0: inline signing) beside the default (auto)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="src/ of an earlier checkout (git archive REV src | tar -x): adds 'before' rows "
        "for the 1-worker runs, measured in the same rounds",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    floors: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = []

    def sample_floor() -> None:
        # The machine is shared: sample the floor in every round and keep the best (least
        # disturbed) figure, which makes every ratio below conservative.
        floors.append(
            (
                crypto_floor(2, seconds=2),
                crypto_floor(1, seconds=2),
                crypto_floor(1, verifies=0, seconds=2),
            )
        )

    runs: dict[str, list[Result]] = {}

    def keep(result: Result | None) -> None:
        if result is not None:
            runs.setdefault(result.name, []).append(result)
            print(f"  {result}", file=sys.stderr)

    one_name, half_name = "taap v2, 1 worker", "taap v2, 1 worker, half peak rate"
    with tempfile.TemporaryDirectory(prefix="taap-bench-") as tmp:
        setup = prepare(Path(tmp))
        for _ in range(args.rounds):
            # Rounds interleave every configuration, so a burst of load from elsewhere on the
            # machine hits one run of each, not every run of one.
            sample_floor()
            keep(bench_taap(setup, one_name, args))
            peak = _median(runs[one_name]).rps
            keep(
                bench_taap(
                    setup,
                    half_name,
                    args,
                    delay_ms=args.connections * 1000 / (peak / 2),
                    expected_rps=peak,
                )
            )
            keep(bench_taap(setup, "taap v2 single, 1 worker", args, "--token-mode", "single"))
            if args.baseline_src:
                keep(bench_taap(setup, "before: taap v2, 1 worker", args, source=args.baseline_src))
                keep(
                    bench_taap(
                        setup,
                        "before: taap v2 single, 1 worker",
                        args,
                        "--token-mode",
                        "single",
                        source=args.baseline_src,
                    )
                )
            keep(
                bench_taap(
                    setup,
                    "taap v2, 1 worker, TAAP_REGISTRY_CACHE=1",
                    args,
                    env_extra={"TAAP_REGISTRY_CACHE": "1"},
                )
            )
            if args.sign_threads is not None:
                # The default (auto) signs on a thread pool with one worker, as node's libuv
                # pool signs for oidc-provider; 0 shows the same work signed on the loop.
                threads = {"TAAP_SIGN_THREADS": str(args.sign_threads)}
                keep(
                    bench_taap(
                        setup,
                        f"taap v2, 1 worker, TAAP_SIGN_THREADS={args.sign_threads}",
                        args,
                        env_extra=threads,
                    )
                )
                keep(
                    bench_taap(
                        setup,
                        f"taap v2 single, 1 worker, TAAP_SIGN_THREADS={args.sign_threads}",
                        args,
                        "--token-mode",
                        "single",
                        env_extra=threads,
                    )
                )
            if not args.skip_workers:
                # The PoPs are made ahead of the run: on a Redis database the store has not
                # used yet, its epoch window would refuse them (docs/deploy.md).
                asyncio.run(_adopt(args.redis_url))
                keep(
                    bench_taap(
                        setup,
                        "taap v2, 2 workers (Redis)",
                        args,
                        "--workers",
                        "2",
                        "--redis-url",
                        args.redis_url,
                        expected_rps=peak * 2,
                    )
                )
            if not args.skip_oidc:
                keep(bench_oidc("oidc-provider (RS256 JWT, 1 process)", args))
    sample_floor()
    floor2 = max(f[0][0] for f in floors)
    floor1 = max(f[1][0] for f in floors)
    floor0 = max(f[2][0] for f in floors)
    # Per CPU-second the floor hardly depends on other load: the median sample.
    cpu2, cpu1, cpu0 = (sorted(f[i][1] for f in floors)[len(floors) // 2] for i in range(3))
    samples = ", ".join(f"{f[0][0]:,.0f}" for f in floors)
    print(
        f"crypto floor (best of {len(floors)} samples: {samples}): {floor2:,.0f}/s "
        f"(1 verify + 2 signs), {floor1:,.0f}/s (1 + 1), {floor0:,.0f}/s (1 sign)"
    )
    results = [_median(group) for group in runs.values()]
    oidc = next((r for r in results if "oidc" in r.name), None)
    print(
        f"median of {args.rounds} rounds per row; "
        f"{args.connections} connections, wrk -t{args.threads}"
    )
    print(table(results, floor2, floor1, floor0, oidc))
    print(
        f"\nvs floor: taap separate against {floor2:,.0f}/s (1 verify + 2 signs), single mode "
        f"against {floor1:,.0f}/s (1 verify + 1 sign), oidc-provider against {floor0:,.0f}/s "
        "(1 sign)"
    )
    for name, group in runs.items():
        print(f"  {name}: " + ", ".join(f"{r.rps:,.0f}/s p99 {r.p99_ms:.1f} ms" for r in group))
    print(
        f"\nBy CPU time (load-independent): floor {cpu2:,.0f} (1 verify + 2 signs), {cpu1:,.0f} "
        f"(1 + 1), {cpu0:,.0f} (1 sign) per CPU-second of one process"
    )
    print(cpu_table(runs, cpu2, cpu1, cpu0))
    print("\nPaired within each round (%; the floor sampled beside the round, not the best one):")
    print(paired_table(runs, floors))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "floors": floors,
                    "floor2": floor2,
                    "floor1": floor1,
                    "floor0": floor0,
                    "runs": {k: [r.__dict__ for r in v] for k, v in runs.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
