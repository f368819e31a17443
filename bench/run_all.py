"""``make bench``: every benchmark of this folder in turn, each printing its own table beside
its floor or its peers (docs/pop.md, client.md, guard.md, server.md, deploy.md, gateway.md).

Each runs with its defaults, one after another, so none disturbs another's figures. Those that
need tools (wrk, nginx, node, PostgreSQL, Redis) say so and end; the others still run. Usage:
``.venv/bin/python bench/run_all.py [NAME ...]`` (names such as ``pop`` or ``gateway``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Cheapest first; bench_scale starts several nodes and takes longest.
ORDER = ("pop", "client", "timing", "guard", "token_server", "gateway", "scale")


def main(names: list[str]) -> int:
    chosen = names or list(ORDER)
    unknown = [n for n in chosen if n not in ORDER]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ORDER)}")
        return 2
    failed = []
    for name in chosen:
        script = HERE / f"bench_{name}.py"
        print(f"\n=== bench_{name}.py", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed or skipped: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
