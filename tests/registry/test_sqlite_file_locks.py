"""Opening a second runner on a SQLite registry file the process already uses must not drop
the process's locks on it: closing any descriptor of a file releases every POSIX lock the
process holds there, which let another process (the CLI) change the file under the server's
open read transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from taap.server.registry.database import parse_database_url
from taap.server.registry.sql import open_runner

# Another process tries to take the write lock at once (no waiting).
_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0)
try:
    conn.execute("BEGIN EXCLUSIVE")
except sqlite3.OperationalError as exc:
    print("locked:", exc)
else:
    print("got the lock")
"""


def _other_process_can_write(path: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.startswith("got the lock")


def test_a_second_runner_keeps_this_process_read_lock(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # a shared lock, held until COMMIT
    try:
        assert not _other_process_can_write(path)
        runner = open_runner(f"sqlite:///{path}")
        try:
            assert not _other_process_can_write(path)
        finally:
            asyncio.run(runner.dispose())
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert _other_process_can_write(path)


def test_a_new_registry_file_is_private_and_an_existing_one_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.db"
    asyncio.run(open_runner(f"sqlite:///{fresh}").dispose())
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    existing = tmp_path / "existing.db"
    existing.touch(mode=0o640)
    existing.chmod(0o640)
    assert parse_database_url(f"sqlite:///{existing}").sqlite_path == existing
    asyncio.run(open_runner(f"sqlite:///{existing}").dispose())
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
