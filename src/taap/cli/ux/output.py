"""How the CLI writes: JSON pretty and coloured on a terminal, compact when piped; notes and
traces on standard error, silenced by ``--quiet``.

A terminal is the reader's: JSON is indented and coloured by rich (``NO_COLOR`` turns the
colour off). A pipe is a program's: JSON goes out compact, on one line, as the server sent it
when it came from a server. Standard output only ever carries the result; what the command
did along the way (retries, the trace of ``-v``) goes to standard error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import IO, Any

import click
from rich.console import Console

from taap.client.retry import RetryNotice

__all__ = ["Reporter", "echo_json", "echo_json_text", "is_terminal", "write_body"]


def is_terminal(stream: IO[Any] | None = None) -> bool:
    """Whether ``stream`` (standard output by default) is a terminal."""
    target = sys.stdout if stream is None else stream
    try:
        return target.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_console() -> Console:
    return Console(file=sys.stdout, soft_wrap=True)


def echo_json_text(text: str) -> None:
    """JSON text as received: pretty and coloured on a terminal, as is (plus a newline) else.
    Text that is not JSON is written unchanged."""
    if is_terminal():
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            _terminal_console().print_json(text, indent=2)
            return
    click.echo(text.rstrip("\n"))


def echo_json(value: Any) -> None:
    """``value`` as JSON: pretty and coloured on a terminal, compact on one line when piped."""
    if is_terminal():
        _terminal_console().print_json(data=value, indent=2)
    else:
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _is_text(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return _is_json(content_type) or media.startswith("text/") or media == ""


def write_body(content: bytes, content_type: str) -> None:
    """An API's answer body on standard output: JSON pretty and coloured on a terminal;
    otherwise the bytes as received, with a final newline added to a text body that lacks
    one (so the shell prompt starts on its own line). Binary bodies are left untouched."""
    if is_terminal() and _is_json(content_type) and content:
        try:
            echo_json_text(content.decode("utf-8"))
            return
        except UnicodeDecodeError:
            pass
    out = sys.stdout.buffer
    out.write(content)
    if content and not content.endswith(b"\n") and _is_text(content_type):
        out.write(b"\n")
    out.flush()


@dataclass(frozen=True, slots=True)
class Reporter:
    """Writes on standard error: ``note`` unless ``quiet`` (retries, cache use), ``trace``
    only when ``verbose`` (``-v``)."""

    verbose: bool = False
    quiet: bool = False

    def note(self, message: str) -> None:
        """A line about what the command does (a retry, say), unless ``--quiet``."""
        if not self.quiet:
            click.echo(f"taap: {message}", err=True)

    def trace(self, line: str) -> None:
        """A line of the ``-v`` trace."""
        if self.verbose:
            click.echo(line, err=True)

    def retrying(self, notice: RetryNotice) -> None:
        """The announcement of a retry: ``rate limited, retrying in 4 s``."""
        self.note(str(notice))
