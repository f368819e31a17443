"""Small file helpers for the CLI: read inputs, write key files with safe permissions."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import click

from taap.core import PrivateKey, load_private_key
from taap.errors import BodyTooLargeError, ConfigurationError, KeyFormatError, TaapError
from taap.settings import SharedSettings, TaapSettings

#: Keys, tokens and the JSON of signed values: none comes near this in use, and a cap keeps
#: `--key /dev/zero` from filling memory.
SMALL_INPUT_CAP = 1024 * 1024


class _BodyCap(TaapSettings):
    """``TAAP_MAX_BODY`` alone: the body cap a server with this environment applies. Reading
    only this variable keeps a client's command working whatever else ``TAAP_*`` holds."""

    # The server's field itself (default and range), typed as pydantic's Field() is.
    max_body: int = cast(int, SharedSettings.model_fields["max_body"])


def _read_at_most(path: str, count: int) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read(count)
    with Path(path).open("rb") as handle:
        return handle.read(count)


def read_capped(path: str, limit: int, error: type[TaapError]) -> bytes:
    """Bytes of ``path`` (standard input for ``-``), at most ``limit`` of them.

    Raises:
        error: more than ``limit`` bytes (only ``limit + 1`` are ever read).
        OSError: the file cannot be read.
    """
    data = _read_at_most(path, limit + 1)
    if len(data) > limit:
        what = "standard input" if path == "-" else "file"
        raise error(f"{what} too large (> {limit // 1024 // 1024} MiB)")
    return data


def read_input(path: str, error: type[TaapError] = KeyFormatError) -> bytes:
    """Bytes of ``path``, or of standard input when ``path`` is ``-`` (capped at 1 MiB)."""
    return read_capped(path, SMALL_INPUT_CAP, error)


def body_cap(explicit: int | None) -> int:
    """The most bytes a body file may hold: ``explicit`` (``--max-body``) when given, else
    the server's cap, ``TAAP_MAX_BODY`` (1 MiB unless set): a larger body would be refused
    with 413 anyway, and an endless file (``/dev/zero``) must not fill memory.

    Raises:
        ConfigurationError: ``TAAP_MAX_BODY`` is not a number.
    """
    if explicit is not None:
        return explicit
    return _BodyCap.load().max_body


def read_body(path: str, limit: int, flag: str) -> bytes:
    """The request body in ``path`` (standard input for ``-``), named ``flag`` in errors.

    Raises:
        BodyTooLargeError: more than ``limit`` bytes (only ``limit + 1`` are ever read).
        OSError: the file cannot be read.
    """
    data = _read_at_most(path, limit + 1)
    if len(data) > limit:
        source = f"{flag} - (standard input)" if path == "-" else flag
        raise BodyTooLargeError(
            f"{source} is larger than {limit} bytes (the cap is TAAP_MAX_BODY, the server's; "
            "--max-body BYTES allows more)"
        )
    return data


#: One answer to a prompt: a URL, an id, a path or a variable name.
ANSWER_CAP = 4096


def ask(
    label: str, default: str | None = None, check: Callable[[str], object] | None = None
) -> str:
    """Prompt for one value. A terminal is asked through click, again while ``check`` (which
    raises :class:`TaapError` for a bad answer) refuses it; piped input is read as one line of
    at most :data:`ANSWER_CAP` bytes (a line that never ends, as ``/dev/zero``'s, would
    otherwise be read into memory without limit) and checked once.

    Raises:
        ConfigurationError: no answer, an answer over the cap, or one that is not UTF-8.
        TaapError: ``check`` refused the piped answer.
    """
    if sys.stdin.isatty():

        def checked(value: str) -> str:
            try:
                if check is not None:
                    check(value)
            except TaapError as exc:
                raise click.BadParameter(exc.description) from None
            return value

        return str(click.prompt(label, default=default, value_proc=checked))
    answer = _piped_answer(label, default)
    if check is not None:
        check(answer)
    return answer


def _piped_answer(label: str, default: str | None) -> str:
    shown = f" [{default}]" if default is not None else ""
    click.echo(f"{label}{shown}: ", nl=False)
    line = sys.stdin.buffer.readline(ANSWER_CAP + 1)
    click.echo()
    if len(line) > ANSWER_CAP:
        raise ConfigurationError(f"{label}: answer longer than {ANSWER_CAP} bytes")
    try:
        answer = line.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"{label}: answer is not UTF-8") from None
    if answer:
        return answer
    if default is None:
        raise ConfigurationError(f"{label}: no answer given")
    return default


def password_from_env(var: str | None) -> bytes | None:
    """The password held in environment variable ``var`` (never taken on the command line).

    Raises:
        ConfigurationError: the variable is not set or empty.
    """
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise ConfigurationError(f"environment variable {var} is not set")
    return value.encode("utf-8")


def load_key_file(path: str, password_env: str | None) -> PrivateKey:
    """Load the private key at ``path``; its password comes from ``password_env``."""
    return load_private_key(read_input(path), password_from_env(password_env))


def write_file(path: str, data: bytes, *, private: bool, force: bool) -> None:
    """Write ``data``; private files are created 0600. Refuses to overwrite without ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise click.UsageError(f"{path} exists (use --force to overwrite)")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(target, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if private:
        target.chmod(0o600)
