"""Small file helpers for the CLI: read inputs, write key files with safe permissions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from taap.core import PrivateKey, load_private_key
from taap.errors import ConfigurationError, KeyFormatError, TaapError

#: Keys, tokens and the JSON of signed values: none comes near this in use, and a cap keeps
#: `--key /dev/zero` from filling memory.
SMALL_INPUT_CAP = 1024 * 1024


def read_capped(path: str, limit: int, error: type[TaapError]) -> bytes:
    """Bytes of ``path`` (standard input for ``-``), at most ``limit`` of them.

    Raises:
        error: more than ``limit`` bytes (only ``limit + 1`` are ever read).
        OSError: the file cannot be read.
    """
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    if len(data) > limit:
        what = "standard input" if path == "-" else "file"
        raise error(f"{what} too large (> {limit // 1024 // 1024} MiB)")
    return data


def read_input(path: str, error: type[TaapError] = KeyFormatError) -> bytes:
    """Bytes of ``path``, or of standard input when ``path`` is ``-`` (capped at 1 MiB)."""
    return read_capped(path, SMALL_INPUT_CAP, error)


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
