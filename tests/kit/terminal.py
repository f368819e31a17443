"""A real process whose standard output (and error) is a pseudo-terminal, as in a user's shell:
what ``isatty()`` says, colours and banners are then the terminal's."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["TerminalRun", "run_on_terminal", "terminal_env"]


def terminal_env(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """``base`` as a colour terminal's environment: no ``NO_COLOR``, a known ``TERM``."""
    env = {k: v for k, v in base.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.update(extra)
    return env


@dataclass
class TerminalRun:
    """What a process wrote to its terminal, and its exit status (``None``: still running
    when the reading stopped, then killed)."""

    output: bytes
    returncode: int | None

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace").replace("\r\n", "\n")


class _Replies:
    """Answers typed in order, each once its prompt shows after the previous answer."""

    def __init__(self, master: int, replies: Sequence[tuple[bytes, str]]) -> None:
        self.master = master
        self.pending = list(replies)
        self.seen = 0  # output before this offset was already answered

    def answer(self, output: bytes) -> None:
        while self.pending:
            prompt, reply = self.pending[0]
            found = output.find(prompt, self.seen)
            if found < 0:
                return
            self.seen = found + len(prompt)
            os.write(self.master, reply.encode())
            self.pending.pop(0)


def _drain(
    master: int,
    until: Callable[[bytes], bool],
    proc: subprocess.Popen[bytes],
    timeout: float,
    replies: _Replies | None = None,
) -> bytes:
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(output):
        if replies is not None:
            replies.answer(output)
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not chunk:
            break
        output += chunk
    return output


def run_on_terminal(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    until: Callable[[bytes], bool] = lambda output: False,
    timeout: float = 60.0,
    cwd: str | None = None,
    replies: Sequence[tuple[bytes, str]] = (),
) -> TerminalRun:
    """Run ``cmd`` with stdin, stdout and stderr on one new pseudo-terminal and read what it
    writes until it exits, ``until(output)`` holds, or ``timeout`` seconds pass; a process
    still running then is stopped (SIGTERM, then SIGKILL). ``replies`` are typed in order:
    each ``(prompt, text)`` once ``prompt`` shows after the previous reply."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            cwd=cwd,
            close_fds=True,
        )
    finally:
        os.close(slave)
    try:
        output = _drain(master, until, proc, timeout, _Replies(master, replies))
        if proc.poll() is None and until(output):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
            output += _drain(master, lambda _: False, proc, 5.0)
        try:
            proc.wait(5)  # the terminal closed as it exited: let it finish exiting
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            return TerminalRun(output, None)
        output += _drain(master, lambda _: False, proc, 1.0)
        return TerminalRun(output, proc.returncode)
    finally:
        os.close(master)
