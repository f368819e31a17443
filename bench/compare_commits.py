"""Old commit against new, side by side in one run: `bench_token_server.py` and `bench_guard.py`.

    .venv/bin/python bench/compare_commits.py --base REV [--head REV_OR_PATH] [--rounds 3]
        [--token-args "..."] [--guard-args "..."] [--skip-token | --skip-guard] [--json PATH]

The base revision (and the head, when it is a revision) is checked out as a detached git
worktree in a temporary folder, removed afterwards; ``--head`` may also name a folder (another
worktree), and by default is this working tree, uncommitted changes included. Each side runs
its own copy of the benches, since they import modules that a refactor may move, with
``PYTHONPATH=<side>/src`` and the side as working folder, under this interpreter (``--python``;
its venv's ``taap`` console script starts the token server, and PYTHONPATH reaches it because
the bench passes its environment on). Before measuring, the script checks from child processes,
the console script included, that ``taap`` is imported from the side's ``src``, not from the
venv's editable install. ``TAAP_*`` variables are dropped for both sides alike.

Rounds alternate the order (old, new, then new, old, ...) so a drift of the machine's speed
falls on both sides. Each bench prints one table: per row and metric the median of the old
and of the new runs, new/old, and every round's pair. Token-bench figures come from its
``--json``; a bench_guard.py without ``--json`` (older commits) is read from its printed table.
The crypto-floor rows run the same code on both sides: their ratio shows the noise. The
defaults (about 9 minutes) leave out oidc-provider and the 2-worker row; pass the bench's own
options through ``--token-args`` (replacing the defaults) to include them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN_BENCH, GUARD_BENCH = "bench_token_server.py", "bench_guard.py"
TOKEN_DEFAULTS = "--duration 5 --rounds 1 --skip-oidc --skip-workers"
GUARD_DEFAULTS = "--wrk 3"
# (field of the token bench's --json result, how the table names it)
TOKEN_METRICS = [
    ("rps", "req/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("cpu_ms", "CPU ms/req"),
    ("rss_mb", "peak RSS MiB"),
]
TOKEN_FLOOR = "crypto floor (1 verify + 2 signs)"
# A row of bench_guard.py's printed table: name, µs/req, req/s, share of the floor.
GUARD_ROW = re.compile(r"^(?P<name>\S.*?)\s+[\d.]+\s+(?P<rps>\d+)\s+\d+%$", re.M)

Key = tuple[str, str]  # (row, metric)


@dataclass
class Side:
    """One revision's tree and the environment its benches run in."""

    name: str  # "old" or "new"
    label: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    series: dict[str, dict[Key, list[float]]] = field(default_factory=dict)  # bench → values

    def add(self, bench: str, figures: dict[Key, float]) -> None:
        for key, value in figures.items():
            self.series.setdefault(bench, {}).setdefault(key, []).append(value)


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def checkout(rev: str, folder: Path) -> Iterator[Path]:
    """A detached worktree of ``rev`` in ``folder``, removed on the way out."""
    git("worktree", "add", "--detach", "--quiet", str(folder), rev)
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False
        )
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def side_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAAP_")}
    env["PYTHONPATH"] = str(root / "src")
    return env


def make_side(name: str, spec: str | None, stack: ExitStack, temp: Path) -> Side:
    """``spec``: a revision (checked out into ``temp``), a folder, or None for this tree."""
    if spec is None:
        dirty = (
            " + uncommitted changes" if git("status", "--porcelain", "--", "src", "bench") else ""
        )
        root, label = ROOT, f"working tree at {git('rev-parse', '--short', 'HEAD')}{dirty}"
    elif Path(spec).is_dir():
        root, label = Path(spec).resolve(), f"folder {spec}"
    else:
        sha = git("rev-parse", "--short", f"{spec}^{{commit}}")
        root = stack.enter_context(checkout(spec, temp / name))
        label = spec if spec == sha else f"{spec} ({sha})"
    return Side(name, label, root, side_env(root))


def _imported_from(text: str) -> Path | None:
    """Where ``taap/__init__.py`` was loaded from, in ``python -v`` output."""
    match = re.search(r"(?:from|matches) (\S+)/taap/__init__\.py", text)
    return Path(match.group(1)) if match else None


def _taap_location(side: Side, cmd: list[str], verbose: bool) -> Path | None:
    env = {**side.env, "PYTHONVERBOSE": "1"} if verbose else side.env
    done = subprocess.run(cmd, cwd=side.root, env=env, capture_output=True, text=True)
    if verbose:
        return _imported_from(done.stderr)
    return Path(done.stdout.strip()).parent.parent if done.returncode == 0 else None


def check_imports(side: Side, python: str) -> None:
    """Exit unless a child interpreter and the ``taap`` console script (which the token bench
    starts the server with) both import taap from the side's src/."""
    want = (side.root / "src").resolve()
    script = str(Path(python).parent / "taap")
    for who, found in [
        (
            "python",
            _taap_location(side, [python, "-c", "import taap; print(taap.__file__)"], False),
        ),
        (script, _taap_location(side, [script, "--help"], True)),
    ]:
        if found is None or found.resolve() != want:
            sys.exit(f"{side.name}: {who} imports taap from {found}, not {want}")


def run_bench(side: Side, python: str, script: str, options: list[str]) -> str:
    done = subprocess.run(
        [python, f"bench/{script}", *options],
        cwd=side.root,
        env=side.env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        sys.exit(f"{script} on {side.label} exited with {done.returncode}:\n{tail}")
    return done.stdout


def token_figures(side: Side, python: str, options: list[str], out: Path) -> dict[Key, float]:
    run_bench(side, python, TOKEN_BENCH, [*options, "--json", str(out)])
    data = json.loads(out.read_text())
    figures: dict[Key, float] = {(TOKEN_FLOOR, "req/s"): data["floor2"]}
    for row, results in data["runs"].items():
        errors = sum(r["errors"] for r in results)
        if errors:
            print(f"  warning: {side.name} {row}: {errors} non-2xx", file=sys.stderr)
        for field_name, metric in TOKEN_METRICS:
            values = [r[field_name] for r in results if r[field_name] is not None]
            if values:
                figures[(row, metric)] = statistics.median(values)
    return figures


def guard_figures(side: Side, python: str, options: list[str], out: Path) -> dict[Key, float]:
    has_json = '"--json"' in (side.root / "bench" / GUARD_BENCH).read_text()
    extra = ["--json", str(out)] if has_json else []
    printed = run_bench(side, python, GUARD_BENCH, [*options, *extra])
    if has_json:
        rows = json.loads(out.read_text())["rows"]
        return {(name, "req/s"): float(row["rps"]) for name, row in rows.items()}
    return {(m["name"], "req/s"): float(m["rps"]) for m in GUARD_ROW.finditer(printed)}


def _fmt(metric: str, value: float) -> str:
    if metric.startswith("req/s"):
        return f"{value:,.0f}"
    digits = {"CPU ms/req": 3, "peak RSS MiB": 0}.get(metric, 2)
    return f"{value:,.{digits}f}"


def table(old: dict[Key, list[float]], new: dict[Key, list[float]]) -> list[str]:
    lines = [
        "| row | metric | old | new | new/old | per round, old → new |",
        "|---|---|---:|---:|---:|---|",
    ]
    previous = ""
    for key in [k for k in old if k in new]:
        row, metric = key
        before, after = statistics.median(old[key]), statistics.median(new[key])
        ratio = f"{after / before:.2f}" if before else ""
        rounds = ", ".join(
            f"{_fmt(metric, a)} → {_fmt(metric, b)}"
            for a, b in zip(old[key], new[key], strict=False)
        )
        shown = row if row != previous else ""
        previous = row
        lines.append(
            f"| {shown} | {metric} | {_fmt(metric, before)} | {_fmt(metric, after)} "
            f"| {ratio} | {rounds} |"
        )
    missing = sorted({k[0] for k in old.keys() ^ new.keys()})
    if missing:
        lines.append(f"(only on one side: {'; '.join(missing)})")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the old revision")
    parser.add_argument("--head", help="the new revision or folder (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=3, help="old/new pairs per bench")
    parser.add_argument("--token-args", default=TOKEN_DEFAULTS, help=f"(default: {TOKEN_DEFAULTS})")
    parser.add_argument("--guard-args", default=GUARD_DEFAULTS, help=f"(default: {GUARD_DEFAULTS})")
    parser.add_argument("--skip-token", action="store_true")
    parser.add_argument("--skip-guard", action="store_true")
    parser.add_argument("--python", default=sys.executable, help="interpreter for both sides")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    args = parser.parse_args()
    # Absolute but not resolved: a venv's python is a symlink, and the venv is what counts.
    args.python = os.path.abspath(args.python)
    return args


def measure(args: argparse.Namespace, old: Side, new: Side, temp: Path) -> None:
    benches = []
    if not args.skip_token:
        benches.append((TOKEN_BENCH, token_figures, shlex.split(args.token_args)))
    if not args.skip_guard:
        benches.append((GUARD_BENCH, guard_figures, shlex.split(args.guard_args)))
    for r in range(args.rounds):
        # Old, new, then new, old: a steady drift of the machine's speed falls on both sides.
        order = (old, new) if r % 2 == 0 else (new, old)
        for script, figures_of, options in benches:
            for side in order:
                start = time.monotonic()
                side.add(script, figures_of(side, args.python, options, temp / "out.json"))
                print(
                    f"round {r + 1}/{args.rounds}: {script} {side.name} "
                    f"{time.monotonic() - start:.0f} s, load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                )


def report(args: argparse.Namespace, old: Side, new: Side) -> None:
    print(f"old: {old.label}\nnew: {new.label}")
    print(
        f"{args.rounds} rounds, order old/new alternating; medians over rounds; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    for script, options in [(TOKEN_BENCH, args.token_args), (GUARD_BENCH, args.guard_args)]:
        if script in old.series and script in new.series:
            print(f"\n{script} {options}")
            print("\n".join(table(old.series[script], new.series[script])))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    side.name: {
                        "label": side.label,
                        **{
                            bench: {" | ".join(key): values for key, values in series.items()}
                            for bench, series in side.series.items()
                        },
                    }
                    for side in (old, new)
                },
                indent=2,
            )
        )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="taap-ab-") as tmp, ExitStack() as stack:
        temp = Path(tmp)
        old = make_side("old", args.base, stack, temp)
        new = make_side("new", args.head, stack, temp)
        for side in (old, new):
            check_imports(side, args.python)
            print(f"{side.name}: {side.label}, taap from {side.root / 'src'}", file=sys.stderr)
        measure(args, old, new, temp)
    report(args, old, new)


if __name__ == "__main__":
    main()
