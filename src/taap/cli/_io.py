"""Small file helpers for the CLI: read inputs, write key files with safe permissions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from taap.core import PrivateKey, load_private_key
from taap.errors import ConfigurationError


def read_input(path: str) -> bytes:
    """Bytes of ``path``, or of standard input when ``path`` is ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


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
    return load_private_key(Path(path).read_bytes(), password_from_env(password_env))


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
